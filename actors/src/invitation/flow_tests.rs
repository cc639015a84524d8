//! Invitations between whole nodes on real QUIC over loopback: the actors, the side
//! streams, the admission batch and the guest's first write.

use std::sync::Arc;

use serde_json::json;
use tokio::sync::mpsc;

use super::{
    AuthMethod, InvitationProgress, InvitationRequestError, InvitationState, InviteOptions,
};
use crate::credentials::Role;
use crate::mesh::test_util::real_node;
use crate::mesh::MeshConfig;
use crate::node::{NodeError, NodeHandle};
use crate::store::MemStore;

const ACCEPT_MS: u64 = 20_000;

async fn pair() -> (NodeHandle, NodeHandle, String) {
    let (a, _) = real_node(61, Arc::new(MemStore::new()), MeshConfig::default()).await;
    let (b, _) = real_node(62, Arc::new(MemStore::new()), MeshConfig::default()).await;
    let space = a.space_create(Some("s".into())).await.unwrap().space_key;
    a.object_add(&space, json!({"from": "a"})).await.unwrap();
    (a, b, space)
}

/// `invite_accept` with the tests' timeout and no progress reports.
async fn accept(
    node: &NodeHandle,
    code: &str,
    auth_code: Option<String>,
) -> Result<super::AcceptedInvitation, NodeError> {
    node.invite_accept(code, auth_code, ACCEPT_MS, None).await
}

fn failed(result: Result<impl std::fmt::Debug, NodeError>) -> (InvitationState, String) {
    match result {
        Err(NodeError::Invitation(InvitationRequestError::Failed { state, reason })) => {
            (state, reason)
        }
        other => panic!("expected a failed invitation, got {other:?}"),
    }
}

#[actix::test]
async fn a_pin_invitation_admits_the_guest_whose_first_write_succeeds_at_once() {
    let (a, b, space) = pair().await;
    let created = a
        .invite_create(&space, InviteOptions::default())
        .await
        .unwrap();
    let pin = created
        .auth_code
        .clone()
        .expect("a pin invitation has an auth code");
    assert_eq!(pin.len(), 6);
    assert!(pin.bytes().all(|c| c.is_ascii_digit()));
    assert!(!created.invitation_code.contains(&pin) || created.invitation_code.len() < 6);
    let (tx, mut rx) = mpsc::unbounded_channel::<InvitationProgress>();
    let accepted = b
        .invite_accept(&created.invitation_code, Some(pin), ACCEPT_MS, Some(tx))
        .await
        .unwrap();
    assert_eq!(accepted.space_key, space);
    assert_eq!(accepted.role, "editor");
    // The first write right after accept succeeds.
    b.object_add(&space, json!({"from": "b"})).await.unwrap();
    // It reaches the host, and the counters saw it go: frames by peer and kind, blocks
    // ingested, commits.
    crate::mesh::test_util::eventually("a has b's object", || async {
        crate::mesh::test_util::count(&a, &space).await == 2
    })
    .await;
    let counters = a.status().await.unwrap().counters;
    let b_device = b.device_key().short();
    let received = format!("echo_frames_received_total{{peer=\"{b_device}\",kind=\"Blocks\"}}");
    assert!(
        counters.get(&received).is_some_and(|n| *n >= 1),
        "{counters:?}"
    );
    assert!(counters["echo_blocks_ingested_total"] >= 1);
    assert!(counters["echo_block_bytes_ingested_total"] > 0);
    let b_counters = b.status().await.unwrap().counters;
    assert!(b_counters["echo_commits_total"] >= 1);
    assert!(b_counters["echo_commit_writes_total"] >= b_counters["echo_commits_total"]);
    assert!(a.metrics_text().contains("echo_blocks_ingested_total "));
    let mut states = vec![];
    while let Ok(p) = rx.try_recv() {
        states.push(p.state);
    }
    assert_eq!(
        states,
        vec![
            InvitationState::Connecting,
            InvitationState::Connected,
            InvitationState::ReadyForAuthentication,
            InvitationState::Authenticating,
            InvitationState::Success,
        ]
    );
    // The host lists it as used.
    let list = a.invite_list(None).await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].state, "SUCCESS");
    assert_eq!(list[0].uses, 1);
    let members = a.space_members(&space).await.unwrap();
    let b_identity = b.identity_show().await.unwrap().identity_key;
    assert!(members
        .iter()
        .any(|m| m.identity_key == b_identity && m.role == Role::Editor.as_str()));
    // Single use: a second guest is refused.
    let (c, _) = real_node(63, Arc::new(MemStore::new()), MeshConfig::default()).await;
    let (state, reason) =
        failed(accept(&c, &created.invitation_code, created.auth_code.clone()).await);
    assert_eq!(state, InvitationState::Error);
    assert_eq!(reason, "the invitation is no longer valid");
}

#[actix::test]
async fn three_wrong_codes_end_the_invitation_and_then_the_right_one_is_refused() {
    let (a, b, space) = pair().await;
    let created = a
        .invite_create(&space, InviteOptions::default())
        .await
        .unwrap();
    let pin = created.auth_code.clone().unwrap();
    let wrong = if pin == "000000" { "111111" } else { "000000" };
    for left in ["2 attempts left", "1 attempt left"] {
        let (state, reason) =
            failed(accept(&b, &created.invitation_code, Some(wrong.into())).await);
        assert_eq!(state, InvitationState::Error);
        assert_eq!(reason, format!("invalid auth code, {left}"));
    }
    let (_, reason) = failed(accept(&b, &created.invitation_code, Some(wrong.into())).await);
    assert_eq!(reason, "too many attempts");
    let (state, reason) = failed(accept(&b, &created.invitation_code, Some(pin)).await);
    assert_eq!(state, InvitationState::Error);
    assert_eq!(reason, "the invitation is no longer valid");
    let list = a.invite_list(Some(&space)).await.unwrap();
    assert_eq!(list[0].state, "ERROR");
    assert_eq!(list[0].attempts_left, 0);
    assert_eq!(list[0].reason.as_deref(), Some("too many attempts"));
    assert_eq!(a.space_members(&space).await.unwrap().len(), 1);
}

#[actix::test]
async fn a_cancelled_invitation_answers_cancelled() {
    let (a, b, space) = pair().await;
    let created = a
        .invite_create(&space, InviteOptions::default())
        .await
        .unwrap();
    let cancelled = a.invite_cancel(&created.invitation_id).await.unwrap();
    assert_eq!(cancelled.state, "CANCELLED");
    let (state, reason) = failed(accept(&b, &created.invitation_code, created.auth_code).await);
    assert_eq!(
        (state, reason.as_str()),
        (InvitationState::Cancelled, "cancelled")
    );
}

#[actix::test]
async fn key_auth_admits_the_named_identity_only() {
    let (a, b, space) = pair().await;
    let (c, _) = real_node(64, Arc::new(MemStore::new()), MeshConfig::default()).await;
    let b_identity = b.identity_show().await.unwrap().identity_key;
    let options = InviteOptions {
        auth: AuthMethod::Key,
        guest_key: Some(b_identity),
        role: Role::Reader,
        multi_use: true,
        ..InviteOptions::default()
    };
    let created = a.invite_create(&space, options).await.unwrap();
    assert_eq!(created.auth_code, None);
    let (state, reason) = failed(accept(&c, &created.invitation_code, None).await);
    assert_eq!(state, InvitationState::Error);
    assert_eq!(reason, "this invitation is for another identity");
    let accepted = accept(&b, &created.invitation_code, None).await.unwrap();
    assert_eq!(accepted.role, "reader");
    // A READER's write is refused locally.
    let refused = b
        .object_add(&space, json!({"from": "b"}))
        .await
        .unwrap_err();
    assert_eq!(refused.kind(), crate::node::ErrorKind::Forbidden);
}

#[actix::test]
async fn a_guest_that_cannot_reach_the_host_times_out_as_host_unreachable() {
    let (a, b, space) = pair().await;
    let created = a
        .invite_create(&space, InviteOptions::default())
        .await
        .unwrap();
    // Every address in the code points at a port nobody listens on.
    let mut code = super::InvitationCode::decode(&created.invitation_code).unwrap();
    code.addrs = vec![std::net::SocketAddr::from(([127, 0, 0, 1], 9))];
    let started = std::time::Instant::now();
    let (state, reason) = failed(
        b.invite_accept(&code.encode(), created.auth_code, 1_500, None)
            .await,
    );
    assert_eq!(
        (state, reason.as_str()),
        (InvitationState::Timeout, "host unreachable")
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

#[actix::test]
async fn a_bad_code_is_refused_before_any_network_work() {
    let (_, b, _) = pair().await;
    let err = accept(&b, "echo1xyz", None).await.unwrap_err();
    assert_eq!(err.code(), "bad_invitation_code");
    assert_eq!(err.kind(), crate::node::ErrorKind::BadRequest);
}

#[actix::test]
async fn an_invitation_and_its_wrong_code_count_survive_a_host_restart() {
    let store = Arc::new(MemStore::new());
    let (a, _) = real_node(65, store.clone(), MeshConfig::default()).await;
    let (b, _) = real_node(66, Arc::new(MemStore::new()), MeshConfig::default()).await;
    let space = a.space_create(None).await.unwrap().space_key;
    let created = a
        .invite_create(&space, InviteOptions::default())
        .await
        .unwrap();
    let pin = created.auth_code.clone().unwrap();
    let wrong = if pin == "000000" { "111111" } else { "000000" };
    let (_, reason) = failed(accept(&b, &created.invitation_code, Some(wrong.into())).await);
    assert_eq!(reason, "invalid auth code, 2 attempts left");
    a.shutdown().await.unwrap();
    // The same store, a new process: the invitation is loaded again, with its count.
    let a = crate::mesh::test_util::open_node(65, store, MeshConfig::default()).await;
    let listed = a.invite_list(None).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].state, "INIT");
    assert_eq!(listed[0].attempts_left, 2);
    // It listens on a new port now; the guest is given that address.
    let mut code = super::InvitationCode::decode(&created.invitation_code).unwrap();
    code.addrs = vec![a.status().await.unwrap().listen.unwrap().parse().unwrap()];
    let accepted = accept(&b, &code.encode(), Some(pin)).await.unwrap();
    assert_eq!(accepted.space_key, space);
    b.object_add(&space, json!({"after": "restart"}))
        .await
        .unwrap();
    let listed = a.invite_list(None).await.unwrap();
    assert_eq!((listed[0].state.as_str(), listed[0].uses), ("SUCCESS", 1));
}

#[actix::test]
async fn only_an_owner_or_admin_may_invite_and_never_as_owner() {
    let (a, b, space) = pair().await;
    let created = a
        .invite_create(
            &space,
            InviteOptions {
                auth: AuthMethod::None,
                ..InviteOptions::default()
            },
        )
        .await
        .unwrap();
    accept(&b, &created.invitation_code, None).await.unwrap();
    // b is an EDITOR: it may not invite.
    let err = b
        .invite_create(&space, InviteOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), crate::node::ErrorKind::Forbidden);
    let err = a
        .invite_create(
            &space,
            InviteOptions {
                role: Role::Owner,
                ..InviteOptions::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), crate::node::ErrorKind::BadRequest);
    // Roles: the owner cannot be changed or removed; a member's can.
    let a_identity = a.identity_show().await.unwrap().identity_key;
    let b_identity = b.identity_show().await.unwrap().identity_key;
    assert_eq!(
        a.space_remove_member(&space, &a_identity)
            .await
            .unwrap_err()
            .kind(),
        crate::node::ErrorKind::Forbidden
    );
    assert_eq!(
        b.space_set_role(&space, &a_identity, Role::Reader)
            .await
            .unwrap_err()
            .kind(),
        crate::node::ErrorKind::Forbidden
    );
    a.space_set_role(&space, &b_identity, Role::Reader)
        .await
        .unwrap();
    a.space_remove_member(&space, &b_identity).await.unwrap();
    let roles = a.space_members(&space).await.unwrap();
    assert!(roles
        .iter()
        .any(|m| m.identity_key == b_identity && m.role == Role::Removed.as_str()));
}

#[actix::test]
async fn a_guest_with_no_signaling_of_its_own_finds_the_host_through_the_codes_server() {
    use crate::transport::{self, NetEnv, TransportConfig};
    use crate::types::KeyPair;
    let server_ep = transport::endpoint(
        NetEnv::Real {
            bind: crate::mesh::test_util::loopback(),
        },
        &KeyPair::from_secret([67; 32]),
        &TransportConfig::new([67; 32]),
    )
    .unwrap();
    let server = server_ep.local_addr().unwrap();
    let _signal = crate::signal::serve_signal(server_ep);
    let host_mesh = MeshConfig {
        signal_servers: vec![server],
        ..MeshConfig::default()
    };
    let (a, _) = real_node(68, Arc::new(MemStore::new()), host_mesh).await;
    let (b, _) = real_node(69, Arc::new(MemStore::new()), MeshConfig::default()).await;
    let space = a.space_create(None).await.unwrap().space_key;
    let created = a
        .invite_create(&space, InviteOptions::default())
        .await
        .unwrap();
    let mut code = super::InvitationCode::decode(&created.invitation_code).unwrap();
    assert_eq!(code.signal, vec![server]);
    // The listen address in the code is useless (as for a host behind a NAT): only the
    // signaling server can bring the two together.
    code.addrs = vec![std::net::SocketAddr::from(([127, 0, 0, 1], 9))];
    let accepted = accept(&b, &code.encode(), created.auth_code).await.unwrap();
    assert_eq!(accepted.space_key, space);
    b.object_add(&space, json!({"via": "signaling"}))
        .await
        .unwrap();
}
