//! `GuestInvitationActor`: one per `invite accept`. It runs a [`GuestCore`] and only carries
//! out its outputs: it finds the host (a connection to the host's device at the code's
//! addresses, then an invitation side stream on it, retried while the core is connecting),
//! signs the host's challenge with this device's key (and shows its AuthorizedDevice chain to
//! the identity), records the space with fresh feeds
//! (`JoinSpace`, or the space as already recorded by an earlier attempt) and reports the
//! states. On SUCCESS it offers the space's channel to the host at once and answers only
//! once this node's admission has replicated here, so that a write right after succeeds.
//!
//! For a device invitation it takes the host's grant on instead of preparing feeds: the
//! identity record and the identity space (`AdoptIdentity`, one durable batch), then the
//! identity space is opened and every space the grant lists is joined; SUCCESS is answered
//! once this device's feeds in the identity space are admitted.

use std::time::Duration;

use actix::prelude::*;
use tokio::sync::{mpsc, oneshot};

use super::code::InvitationCode;
use super::guest::{GuestCore, GuestInput, GuestOutput, GuestParams, Outcome};
use super::info::{AcceptedInvitation, InvitationProgress};
use super::messages::DeviceGrant;
use super::messages::{GuestFrame, HostFrame, InvitationState};
use super::request_error::InvitationRequestError;
use super::stream_io::spawn_stream_io;
use crate::identity::{AdoptIdentity, IdentityActor, SignAsDevice};
use crate::mesh::{
    ConnectDevice, JoinInvitationTopic, LeaveInvitationTopic, NetworkActor, OfferChannels,
    OpenSideStream,
};
use crate::space::{
    found_halo, HaloSpace, JoinSpace, OpenHaloSpace, OwnFeeds, ResolveSpace, SpaceActor,
    SpaceDirectory, SpaceRequestError, WaitAdmitted,
};
use crate::types::{Backoff, Clock, PublicKey};

/// How long after SUCCESS the guest waits for its admission to replicate.
const ADMISSION_WAIT: Duration = Duration::from_secs(30);
/// How long a guest whose connection went after it asked to be admitted looks for the
/// admission before it reports ERROR.
const ADMISSION_CHECK: Duration = Duration::from_secs(10);

pub type AcceptResult = Result<AcceptedInvitation, InvitationRequestError>;

/// What the guest actor needs of the node.
pub struct GuestDeps {
    pub network: Addr<NetworkActor>,
    pub spaces: Addr<SpaceDirectory>,
    pub identity: Addr<IdentityActor>,
    pub clock: std::sync::Arc<dyn Clock>,
}

/// See the module docs.
pub struct GuestInvitationActor {
    core: GuestCore,
    code: InvitationCode,
    deps: GuestDeps,
    /// Frames to the host on the current side stream.
    frames: Option<mpsc::UnboundedSender<GuestFrame>>,
    /// Which connection attempt the reader's reports belong to.
    attempt: u64,
    retry: Backoff,
    progress: Option<mpsc::UnboundedSender<InvitationProgress>>,
    answer: Option<oneshot::Sender<AcceptResult>>,
}

impl GuestInvitationActor {
    pub fn new(
        code: InvitationCode,
        params: GuestParams,
        deps: GuestDeps,
        progress: Option<mpsc::UnboundedSender<InvitationProgress>>,
        answer: oneshot::Sender<AcceptResult>,
    ) -> Self {
        GuestInvitationActor {
            core: GuestCore::new(params),
            code,
            deps,
            frames: None,
            attempt: 0,
            retry: Backoff::new(Duration::from_millis(250), Duration::from_secs(5)),
            progress,
            answer: Some(answer),
        }
    }

    fn feed(&mut self, input: GuestInput, ctx: &mut Context<Self>) {
        let outputs = self.core.handle(self.deps.clock.now_ms(), input);
        self.carry_out(outputs, ctx);
    }

    fn carry_out(&mut self, outputs: Vec<GuestOutput>, ctx: &mut Context<Self>) {
        for output in outputs {
            self.carry_out_one(output, ctx);
        }
    }

    fn carry_out_one(&mut self, output: GuestOutput, ctx: &mut Context<Self>) {
        match output {
            GuestOutput::FindHost => {
                if self.attempt == 0 {
                    // Signaling may find the host where the code's addresses do not.
                    self.deps.network.do_send(JoinInvitationTopic {
                        topic: self.code.topic,
                        signal: self.code.signal.clone(),
                    });
                    self.find_host(ctx);
                } else {
                    // Lost the host before its verdict: try again, not in a tight loop.
                    let wait = self.retry.fail();
                    ctx.run_later(wait, |act, ctx| {
                        if act.core.state() == InvitationState::Connecting {
                            act.find_host(ctx);
                        }
                    });
                }
            }
            GuestOutput::Send(frame) => {
                if let Some(frames) = &self.frames {
                    let _ = frames.send(frame);
                }
            }
            GuestOutput::SignChallenge(message) => {
                self.deps
                    .identity
                    .send(SignAsDevice(message))
                    .into_actor(self)
                    .map(|res, act, ctx| match res {
                        Ok(Ok(signed)) => act.feed(
                            GuestInput::Signed {
                                signature: signed.signature,
                                device_auth: Box::new(signed.device_auth),
                            },
                            ctx,
                        ),
                        _ => act.feed(
                            GuestInput::PrepareFailed(
                                "cannot sign the host's challenge: no identity here".into(),
                            ),
                            ctx,
                        ),
                    })
                    .spawn(ctx);
            }
            GuestOutput::PrepareAdmission => {
                let spaces = self.deps.spaces.clone();
                let space_key = self.code.space_key;
                async move { prepare(&spaces, space_key).await }
                    .into_actor(self)
                    .map(|res, act, ctx| match res {
                        Ok((device_auth, feeds)) => act.feed(
                            GuestInput::Prepared {
                                device_auth: Box::new(device_auth),
                                feeds,
                            },
                            ctx,
                        ),
                        Err(e) => act.feed(GuestInput::PrepareFailed(e), ctx),
                    })
                    .spawn(ctx);
            }
            GuestOutput::Adopt(grant) => {
                let identity = self.deps.identity.clone();
                let spaces = self.deps.spaces.clone();
                async move { adopt(&identity, &spaces, *grant).await }
                    .into_actor(self)
                    .map(|res, act, ctx| act.feed(GuestInput::Adopted(res), ctx))
                    .spawn(ctx);
            }
            GuestOutput::Close => {
                self.frames = None;
            }
            GuestOutput::CheckAdmitted => {
                // The host may have admitted us before the connection went: offer the
                // space's channel everywhere and see whether the admission arrives (the
                // handshake timer still bounds the wait).
                let space_key = self.code.space_key;
                self.deps.network.do_send(OfferChannels(space_key));
                let spaces = self.deps.spaces.clone();
                async move {
                    let space: Addr<SpaceActor> = spaces
                        .send(ResolveSpace(space_key.to_hex()))
                        .await
                        .ok()?
                        .ok()?;
                    space
                        .send(WaitAdmitted {
                            timeout: ADMISSION_CHECK,
                        })
                        .await
                        .ok()?
                        .ok()
                }
                .into_actor(self)
                .map(|role, act, ctx| act.feed(GuestInput::AdmissionChecked(role), ctx))
                .spawn(ctx);
            }
            GuestOutput::SetTimer { at_ms, timer } => {
                let wait = Duration::from_millis(at_ms.saturating_sub(self.deps.clock.now_ms()));
                ctx.run_later(wait, move |act, ctx| {
                    act.feed(GuestInput::Timer(timer), ctx)
                });
            }
            GuestOutput::State(state) => {
                tracing::info!(state = state.name(), "accepting an invitation");
                if let Some(progress) = &self.progress {
                    let _ = progress.send(InvitationProgress { state });
                }
            }
            GuestOutput::Done(outcome) => self.done(outcome, ctx),
        }
    }

    /// Connects to the host's device and opens an invitation stream on the connection;
    /// tries again with backoff while the core is still connecting.
    fn find_host(&mut self, ctx: &mut Context<Self>) {
        self.attempt += 1;
        let attempt = self.attempt;
        let network = self.deps.network.clone();
        let connect = ConnectDevice {
            device: self.code.host_device,
            addrs: self.code.addrs.clone(),
            via_signaling: !self.code.signal.is_empty(),
        };
        async move {
            let conn = network
                .send(connect)
                .await
                .map_err(|_| "the node is shutting down".to_string())??;
            conn.send(OpenSideStream)
                .await
                .map_err(|_| "the connection closed".to_string())?
        }
        .into_actor(self)
        .map(move |result, act, ctx| {
            if act.attempt != attempt || act.core.state() != InvitationState::Connecting {
                return;
            }
            match result {
                Ok(stream) => {
                    act.start_stream(stream, attempt, ctx);
                    act.feed(GuestInput::Connected, ctx);
                }
                Err(e) => {
                    let wait = act.retry.fail();
                    tracing::info!(error = %e, retry_in = ?wait, "cannot reach the invitation's host yet");
                    ctx.run_later(wait, |act, ctx| {
                        if act.core.state() == InvitationState::Connecting {
                            act.find_host(ctx);
                        }
                    });
                }
            }
        })
        .spawn(ctx);
    }

    fn start_stream(
        &mut self,
        stream: crate::mesh::SideStream,
        attempt: u64,
        ctx: &mut Context<Self>,
    ) {
        let crate::mesh::SideStream {
            send, recv, guard, ..
        } = stream;
        let me = ctx.address();
        let gone = ctx.address();
        let frames = spawn_stream_io::<GuestFrame, HostFrame, _, _, _>(
            send,
            recv,
            guard,
            "host",
            move |frame| {
                let me = me.clone();
                async move { me.send(HostSaid(attempt, frame)).await.is_ok() }
            },
            move || gone.do_send(HostGone(attempt)),
        );
        self.frames = Some(frames);
    }

    fn done(&mut self, outcome: Outcome, ctx: &mut Context<Self>) {
        self.frames = None;
        self.deps
            .network
            .do_send(LeaveInvitationTopic(self.code.topic));
        let Some((space_key, role)) = outcome.admitted else {
            let reason = outcome
                .reason
                .unwrap_or_else(|| outcome.state.name().to_lowercase());
            self.answer(Err(InvitationRequestError::Failed {
                state: outcome.state,
                reason,
            }));
            ctx.stop();
            return;
        };
        if space_key != self.code.space_key {
            self.answer(Err(InvitationRequestError::Failed {
                state: InvitationState::Error,
                reason: "the host admitted this node to another space than the code names".into(),
            }));
            ctx.stop();
            return;
        }
        // Admitted on the host: replicate it now rather than at the next re-offer, and
        // answer once this node may write.
        self.deps.network.do_send(OfferChannels(space_key));
        let spaces = self.deps.spaces.clone();
        let device = self.code.kind == super::code::InvitationKind::Device;
        async move {
            let space: Addr<SpaceActor> = if device {
                match spaces.send(HaloSpace).await? {
                    Some((_, addr)) => addr,
                    None => return Err(SpaceRequestError::Corrupt("no identity space".into())),
                }
            } else {
                spaces.send(ResolveSpace(space_key.to_hex())).await??
            };
            space
                .send(WaitAdmitted {
                    timeout: ADMISSION_WAIT,
                })
                .await?
        }
        .into_actor(self)
        .map(
            move |res: Result<crate::credentials::Role, SpaceRequestError>, act, ctx| {
                act.answer(match res {
                    Ok(_) => Ok(AcceptedInvitation {
                        space_key: space_key.to_hex(),
                        role: role.as_str().to_string(),
                    }),
                    Err(e) => Err(InvitationRequestError::Failed {
                        state: InvitationState::Error,
                        reason: format!(
                            "the host admitted this node as {}, but the admission has not \
                         replicated here yet: {e}",
                            role.as_str()
                        ),
                    }),
                });
                ctx.stop();
            },
        )
        .spawn(ctx);
    }

    fn answer(&mut self, result: AcceptResult) {
        if let Some(answer) = self.answer.take() {
            let _ = answer.send(result);
        }
    }
}

/// Records the space with fresh feeds (or takes the feeds an earlier attempt recorded) and
/// returns this device's credential and the feeds (control, data) to be admitted.
async fn prepare(
    spaces: &Addr<SpaceDirectory>,
    space_key: PublicKey,
) -> Result<(crate::credentials::Credential, Vec<PublicKey>), String> {
    let joined = spaces
        .send(JoinSpace {
            space_key,
            name: None,
        })
        .await
        .map_err(|_| "the node is shutting down".to_string())?;
    match joined {
        Ok(_) | Err(SpaceRequestError::Invalid(_)) => {}
        Err(e) => return Err(format!("cannot record the space: {e}")),
    }
    let space = spaces
        .send(ResolveSpace(space_key.to_hex()))
        .await
        .map_err(|_| "the node is shutting down".to_string())?
        .map_err(|e| format!("cannot record the space: {e}"))?;
    let (control, data, device_auth) = space
        .send(OwnFeeds)
        .await
        .map_err(|_| "the node is shutting down".to_string())?;
    let device_auth = device_auth.ok_or("this node has no identity")?;
    Ok((device_auth, vec![control, data]))
}

/// Takes on the identity a device invitation's host granted: the identity record with the
/// identity space joined (one durable batch), the identity space opened, and every space
/// the grant lists joined (the rest of the list arrives with the identity space).
async fn adopt(
    identity: &Addr<IdentityActor>,
    spaces: &Addr<SpaceDirectory>,
    grant: DeviceGrant,
) -> Result<(), String> {
    let gone = |_| "the node is shutting down".to_string();
    identity
        .send(AdoptIdentity {
            identity_key: grant.identity_key,
            name: grant.name,
            device_credential: grant.device_credential,
            halo_space_key: grant.halo_space_key,
            halo: found_halo(),
        })
        .await
        .map_err(gone)?
        .map_err(|e| format!("cannot take on the identity: {e}"))?;
    spaces
        .send(OpenHaloSpace)
        .await
        .map_err(gone)?
        .map_err(|e| format!("cannot open the identity space: {e}"))?;
    for space_key in grant.spaces {
        let joined = spaces
            .send(JoinSpace {
                space_key,
                name: None,
            })
            .await
            .map_err(gone)?;
        if let Err(e) = joined {
            // Joined already (by the list in the identity space), or it will be retried by
            // the identity space's list.
            tracing::info!(space = %space_key.short(), error = %e, "not joining a granted space now");
        }
    }
    Ok(())
}

impl Actor for GuestInvitationActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let outputs = self.core.start(self.deps.clock.now_ms());
        self.carry_out(outputs, ctx);
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        self.answer(Err(InvitationRequestError::Unavailable));
    }
}

#[derive(Message)]
#[rtype(result = "()")]
struct HostSaid(u64, HostFrame);

impl Handler<HostSaid> for GuestInvitationActor {
    type Result = ();
    fn handle(&mut self, msg: HostSaid, ctx: &mut Context<Self>) {
        if msg.0 == self.attempt {
            self.retry.reset();
            self.feed(GuestInput::Frame(msg.1), ctx);
        }
    }
}

#[derive(Message)]
#[rtype(result = "()")]
struct HostGone(u64);

impl Handler<HostGone> for GuestInvitationActor {
    type Result = ();
    fn handle(&mut self, msg: HostGone, ctx: &mut Context<Self>) {
        if msg.0 == self.attempt {
            self.frames = None;
            self.feed(GuestInput::Disconnected, ctx);
        }
    }
}
