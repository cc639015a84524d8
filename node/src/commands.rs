//! The client subcommands. Each one is first turned into a [`Plan`] (one API call plus how to
//! render its answer), which checks the arguments (JSON objects, ...) before any request
//! is made; then it runs against the daemon. `watch` streams instead, and `invite accept`
//! (which may prompt and reports progress) lives in `invite_accept.rs`.

use std::io::Write;
use std::time::Duration;

use anyhow::Context;
use serde_json::{json, Value};

use crate::cli::{
    Command, DeviceCommand, IdentityCommand, InviteAuth, InviteCommand, InviteCreateArgs,
    ObjectCommand, QueryArgs, SeedPhrase, SpaceCommand, TextCommand, WatchArgs,
};
use crate::client::{seg, waiting, Client, REQUEST_TIMEOUT};
use crate::exit::ExitError;
use crate::invite_accept::Accepting;
use crate::output;
use crate::paths::DataDir;

/// One request to the local API.
#[derive(Debug, Clone, PartialEq)]
pub enum Call {
    Get(String),
    Post(String, Value),
    Put(String, Value),
    Patch(String, Value),
    Delete(String),
}

/// A checked command: the call to make, the human renderer for its answer, and how long the
/// daemon may take to answer (longer than usual for calls that wait, e.g. `space join`).
pub struct Plan {
    pub call: Call,
    pub human: fn(&Value) -> String,
    pub timeout: Duration,
}

/// Runs a client subcommand (anything but `run`).
pub fn execute(dir: &DataDir, command: Command, json: bool) -> anyhow::Result<()> {
    let command = match command {
        Command::Watch(args) => return watch(dir, &args, json),
        Command::Invite(InviteCommand::Accept(args)) => {
            return crate::invite_accept::run(dir, &args, json, Accepting::Invitation)
        }
        Command::Device(DeviceCommand::Join {
            accept,
            device_name,
        }) => {
            let accepting = Accepting::Device {
                device_name: device_name.or_host_name(),
            };
            return crate::invite_accept::run(dir, &accept, json, accepting);
        }
        command => command,
    };
    let plan = plan(command)?;
    let client = Client::connect(dir)?.with_timeout(plan.timeout);
    let answer = match plan.call {
        Call::Get(path) => client.get(&path)?,
        Call::Post(path, body) => client.post(&path, &body)?,
        Call::Put(path, body) => client.put(&path, &body)?,
        Call::Patch(path, body) => client.patch(&path, &body)?,
        Call::Delete(path) => client.delete(&path)?,
    };
    let text = if json {
        format!("{}\n", output::json(&answer))
    } else {
        (plan.human)(&answer)
    };
    emit(&text)
}

/// Checks a command's arguments and decides its API call.
pub fn plan(command: Command) -> Result<Plan, ExitError> {
    let plan = |call, human| {
        Ok(Plan {
            call,
            human,
            timeout: REQUEST_TIMEOUT,
        })
    };
    match command {
        Command::Identity(IdentityCommand::Create { name, device_name }) => plan(
            Call::Post(
                "/v1/identity".into(),
                json!({ "name": name, "device_name": device_name.or_host_name() }),
            ),
            output::identity_created,
        ),
        Command::Identity(IdentityCommand::Recover {
            seed_phrase,
            name,
            device_name,
        }) => plan(
            Call::Post(
                "/v1/identity/recover".into(),
                json!({
                    "seed_phrase": seed_phrase_words(seed_phrase)?,
                    "name": name,
                    "device_name": device_name.or_host_name(),
                }),
            ),
            output::identity_recovered,
        ),
        Command::Identity(IdentityCommand::Show) => {
            plan(Call::Get("/v1/identity".into()), output::identity)
        }
        Command::Space(SpaceCommand::Create { name }) => plan(
            Call::Post("/v1/spaces".into(), json!({ "name": name })),
            output::space,
        ),
        Command::Space(SpaceCommand::List) => plan(Call::Get("/v1/spaces".into()), output::spaces),
        Command::Space(SpaceCommand::AddMember {
            space,
            identity_key,
            role,
        }) => plan(
            Call::Post(
                format!("/v1/spaces/{}/members", seg(&space)),
                json!({ "identity_key": identity_key, "role": role.as_str() }),
            ),
            output::member,
        ),
        Command::Space(SpaceCommand::SetRole {
            space,
            identity_key,
            role,
        }) => plan(
            Call::Put(
                member_path(&space, &identity_key),
                json!({ "role": role.as_str() }),
            ),
            output::member,
        ),
        Command::Space(SpaceCommand::RemoveMember {
            space,
            identity_key,
        }) => plan(
            Call::Delete(member_path(&space, &identity_key)),
            output::member,
        ),
        Command::Space(SpaceCommand::Join {
            space_key,
            name,
            timeout,
        }) => Ok(Plan {
            call: Call::Post(
                "/v1/spaces/join".into(),
                json!({ "space_key": space_key, "name": name, "timeout_ms": millis(timeout) }),
            ),
            human: output::space,
            timeout: waiting(timeout),
        }),
        Command::Space(SpaceCommand::Members { space }) => plan(
            Call::Get(format!("/v1/spaces/{}/members", seg(&space))),
            output::members,
        ),
        Command::Space(SpaceCommand::Verdicts { space }) => plan(
            Call::Get(format!("/v1/spaces/{}/verdicts", seg(&space))),
            output::verdicts,
        ),
        Command::Object(ObjectCommand::Add { space, object }) => {
            let object = object_arg(&object, "the object")?;
            plan(
                Call::Post(format!("/v1/spaces/{}/objects", seg(&space)), object),
                output::object_id,
            )
        }
        Command::Object(ObjectCommand::Get { space, id }) => {
            plan(Call::Get(object_path(&space, &id)), output::object)
        }
        Command::Object(ObjectCommand::Update { space, id, patch }) => {
            let patch = object_arg(&patch, "the merge patch")?;
            plan(Call::Patch(object_path(&space, &id), patch), output::object)
        }
        Command::Object(ObjectCommand::Delete { space, id }) => {
            plan(Call::Delete(object_path(&space, &id)), output::deleted)
        }
        Command::Query(QueryArgs {
            space,
            type_name,
            where_eq,
            include_deleted,
        }) => {
            let body =
                json!({ "type": type_name, "where": where_eq, "include_deleted": include_deleted });
            plan(
                Call::Post(format!("/v1/spaces/{}/query", seg(&space)), body),
                output::objects,
            )
        }
        Command::Text(TextCommand::Insert {
            space,
            id,
            field,
            index,
            text,
        }) => plan(
            Call::Post(
                format!("{}/insert", text_path(&space, &id, &field)),
                json!({ "index": index, "text": text }),
            ),
            output::text_edit,
        ),
        Command::Text(TextCommand::Delete {
            space,
            id,
            field,
            index,
            len,
        }) => plan(
            Call::Post(
                format!("{}/delete", text_path(&space, &id, &field)),
                json!({ "index": index, "len": len }),
            ),
            output::text_edit,
        ),
        Command::Text(TextCommand::Get { space, id, field }) => {
            plan(Call::Get(text_path(&space, &id, &field)), output::text)
        }
        Command::Invite(InviteCommand::Create(args)) => plan(
            Call::Post(
                format!("/v1/spaces/{}/invitations", seg(&args.space)),
                invite_body(&args)?,
            ),
            output::invitation_created,
        ),
        Command::Invite(InviteCommand::List { space }) => {
            let path = match space {
                Some(space) => format!("/v1/invitations?space={}", seg(&space)),
                None => "/v1/invitations".to_string(),
            };
            plan(Call::Get(path), output::invitations)
        }
        Command::Invite(InviteCommand::Cancel { invitation_id }) => plan(
            Call::Post(
                format!("/v1/invitations/{}/cancel", seg(&invitation_id)),
                json!({}),
            ),
            output::invitation,
        ),
        Command::Device(DeviceCommand::Invite(args)) => plan(
            Call::Post(
                "/v1/devices/invitations".into(),
                json!({
                    "auth": args.auth.as_str(),
                    "multi_use": args.multi_use,
                    "timeout_ms": millis(args.timeout),
                    "lifetime_ms": millis(args.lifetime),
                }),
            ),
            output::device_invitation_created,
        ),
        Command::Device(DeviceCommand::List) => {
            plan(Call::Get("/v1/devices".into()), output::devices)
        }
        Command::Device(DeviceCommand::Rename { name }) => plan(
            Call::Post("/v1/devices/rename".into(), json!({ "name": name })),
            output::device_renamed,
        ),
        Command::Device(DeviceCommand::Revoke { device_key }) => plan(
            Call::Post(
                format!("/v1/devices/{}/revoke", seg(&device_key)),
                json!({}),
            ),
            output::device_revoked,
        ),
        Command::Status => plan(Call::Get("/v1/status".into()), output::status),
        Command::Run(_)
        | Command::Signal(_)
        | Command::Watch(_)
        | Command::Invite(InviteCommand::Accept(_))
        | Command::Device(DeviceCommand::Join { .. }) => Err(ExitError::usage(
            "this command does not make a single API call",
        )),
    }
}

/// A duration in whole milliseconds, as the API takes it.
pub fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The words of `--seed-phrase` (one quoted value or several words), read from stdin for a
/// lone `-`. Checked by the daemon, which says what is wrong with them.
fn seed_phrase_words(phrase: Vec<SeedPhrase>) -> Result<String, ExitError> {
    if phrase == [SeedPhrase::Stdin] {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).map_err(|e| {
            ExitError::usage(format!("cannot read the seed phrase from stdin: {e}"))
        })?;
        return Ok(line);
    }
    let mut words = Vec::with_capacity(phrase.len());
    for part in phrase {
        match part {
            SeedPhrase::Words(w) => words.push(w),
            SeedPhrase::Stdin => {
                return Err(ExitError::usage(
                    "`--seed-phrase -` reads the phrase from stdin and takes no words besides",
                ))
            }
        }
    }
    Ok(words.join(" "))
}

fn member_path(space: &str, identity_key: &str) -> String {
    format!("/v1/spaces/{}/members/{}", seg(space), seg(identity_key))
}

/// The body of `POST /v1/spaces/{space}/invitations`; `--guest-key` goes with `--auth key`
/// and only with it.
fn invite_body(args: &InviteCreateArgs) -> Result<Value, ExitError> {
    match (args.auth, &args.guest_key) {
        (InviteAuth::Key, None) => {
            return Err(ExitError::usage(
                "`--auth key` needs `--guest-key IDENTITY_KEY`: the identity key of the guest \
                 (`echo-node identity show` on its node)",
            ))
        }
        (auth, Some(_)) if auth != InviteAuth::Key => {
            return Err(ExitError::usage(format!(
                "`--guest-key` is only for `--auth key`, not `--auth {}`",
                auth.as_str()
            )))
        }
        _ => {}
    }
    Ok(json!({
        "role": args.role.as_str(),
        "auth": args.auth.as_str(),
        "guest_key": args.guest_key,
        "multi_use": args.multi_use,
        "timeout_ms": millis(args.timeout),
        "lifetime_ms": millis(args.lifetime),
    }))
}

fn object_path(space: &str, id: &str) -> String {
    format!("/v1/spaces/{}/objects/{}", seg(space), seg(id))
}

fn text_path(space: &str, id: &str, field: &str) -> String {
    format!("{}/text/{}", object_path(space, id), seg(field))
}

/// A command-line argument that must be a JSON object: given inline, or as `@FILE` (JSON
/// never starts with `@`), for values larger than one argument may be (128 KiB on Linux).
fn object_arg(raw: &str, what: &str) -> Result<Value, ExitError> {
    if let Some(path) = raw.strip_prefix('@') {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ExitError::usage(format!("cannot read {what} from `{path}`: {e}")))?;
        return match serde_json::from_str::<Value>(&text) {
            Ok(value @ Value::Object(_)) => exact_numbers(&text, value, what),
            Ok(_) => Err(ExitError::usage(format!(
                "{what} in `{path}` must be a JSON object"
            ))),
            Err(e) => Err(ExitError::usage(format!(
                "{what} in `{path}` is not valid JSON ({e})"
            ))),
        };
    }
    match serde_json::from_str::<Value>(raw) {
        Ok(value @ Value::Object(_)) => exact_numbers(raw, value, what),
        Ok(_) => Err(ExitError::usage(format!(
            "{what} must be a JSON object like '{{\"title\": \"Buy milk\"}}', not `{raw}`"
        ))),
        Err(e) => Err(ExitError::usage(format!(
            "{what} is not valid JSON ({e}): `{raw}`"
        ))),
    }
}

/// `value`, parsed from `text`, unless parsing rounded one of its numbers: the CLI sends the
/// parsed value, so the daemon could no longer tell (`db::check_json_numbers`).
fn exact_numbers(text: &str, value: Value, what: &str) -> Result<Value, ExitError> {
    echo_actors::db::check_json_numbers(text.as_bytes())
        .map(|()| value)
        .map_err(|e| ExitError::usage(format!("{what}: {e}")))
}

/// `watch`: prints one line per change until interrupted or the daemon stops.
fn watch(dir: &DataDir, args: &WatchArgs, json: bool) -> anyhow::Result<()> {
    let mut path = format!("/v1/spaces/{}/watch", seg(&args.space));
    if let Some(type_name) = &args.type_name {
        path.push_str(&format!("?type={}", seg(type_name)));
    }
    let client = Client::connect(dir)?;
    let lines = client.stream_lines(&path)?;
    // Subscribed: say so on stderr (stdout carries only events), for people and scripts.
    eprintln!("watching space {} (Ctrl-C to stop)", args.space);
    for line in lines {
        let line = line.context("the watch stream broke off (did the daemon stop?)")?;
        if line.trim().is_empty() {
            continue;
        }
        let event: Value =
            serde_json::from_str(&line).context("the daemon sent a watch line that is not JSON")?;
        let text = if json {
            format!("{}\n", output::json(&event))
        } else {
            output::change_event(&event)
        };
        emit(&text)?;
    }
    Ok(())
}

/// Writes to stdout and flushes at once (watch lines must not wait in a buffer).
pub fn emit(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Cli;
    use clap::Parser;

    fn plan_of(args: &[&str]) -> Result<Plan, ExitError> {
        let cli = Cli::try_parse_from(std::iter::once("echo-node").chain(args.iter().copied()))
            .expect("parses");
        plan(cli.command)
    }

    #[test]
    fn a_device_is_named_when_it_takes_on_an_identity_and_by_device_rename() {
        let plan = plan_of(&["identity", "create", "--device-name", "phone"]).expect("plans");
        assert_eq!(
            plan.call,
            Call::Post(
                "/v1/identity".into(),
                json!({"name": null, "device_name": "phone"})
            )
        );
        // No --device-name: the host's name (what `or_host_name` finds on this machine).
        let host = crate::device_name_arg::DeviceNameArgs { device_name: None }.or_host_name();
        let plan = plan_of(&["identity", "create"]).expect("plans");
        assert_eq!(
            plan.call,
            Call::Post(
                "/v1/identity".into(),
                json!({"name": null, "device_name": host})
            )
        );
        let plan = plan_of(&["device", "rename", "work laptop"]).expect("plans");
        assert_eq!(
            plan.call,
            Call::Post("/v1/devices/rename".into(), json!({"name": "work laptop"}))
        );
        // A name the node would refuse is a usage error.
        for bad in [
            &["device", "rename", ""][..],
            &["identity", "create", "--device-name", " x"],
        ] {
            let err = Cli::try_parse_from(std::iter::once("echo-node").chain(bad.iter().copied()))
                .expect_err("refused");
            assert_eq!(
                err.kind(),
                clap::error::ErrorKind::ValueValidation,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn identity_recover_posts_the_phrase_and_never_shows_it_in_debug_output() {
        let plan = plan_of(&[
            "identity",
            "recover",
            "--seed-phrase",
            "word1 word2",
            "--name",
            "Ada",
            "--device-name",
            "laptop",
        ])
        .expect("plans");
        assert_eq!(
            plan.call,
            Call::Post(
                "/v1/identity/recover".into(),
                json!({"seed_phrase": "word1 word2", "name": "Ada", "device_name": "laptop"})
            )
        );
        let cli =
            Cli::try_parse_from(["echo-node", "identity", "recover", "--seed-phrase", "w1 w2"])
                .expect("parses");
        assert!(!format!("{cli:?}").contains("w1"), "{cli:?}");
        // The phrase is required; unquoted words are one phrase, and never an error that
        // would echo one of them.
        assert!(Cli::try_parse_from(["echo-node", "identity", "recover"]).is_err());
        let plan = plan_of(&[
            "identity",
            "recover",
            "--seed-phrase",
            "w1",
            "w2",
            "w3",
            "--name",
            "Ada",
            "--device-name",
            "pc",
        ])
        .expect("plans");
        assert_eq!(
            plan.call,
            Call::Post(
                "/v1/identity/recover".into(),
                json!({"seed_phrase": "w1 w2 w3", "name": "Ada", "device_name": "pc"})
            )
        );
        let err = plan_of(&["identity", "recover", "--seed-phrase", "-", "w2"])
            .err()
            .expect("mixed");
        assert_eq!(err.code, crate::exit::USAGE);
    }

    #[test]
    fn object_arguments_must_be_json_objects() {
        let err = plan_of(&["object", "add", "s", "{nope"])
            .err()
            .expect("bad JSON");
        assert_eq!(err.code, crate::exit::USAGE);
        assert!(err.message.contains("not valid JSON"));
        let err = plan_of(&["object", "update", "s", "id", "[1]"])
            .err()
            .expect("not an object");
        assert!(err.message.contains("must be a JSON object"));
    }

    #[test]
    fn object_arguments_with_inexact_numbers_are_refused_before_sending() {
        let err = plan_of(&["object", "add", "s", r#"{"n": 18446744073709551615}"#])
            .err()
            .expect("beyond i64");
        assert_eq!(err.code, crate::exit::USAGE);
        assert!(
            err.message.contains("cannot be stored exactly"),
            "{}",
            err.message
        );
        let patch = format!(r#"{{"n": 1{}}}"#, "0".repeat(99));
        let err = plan_of(&["object", "update", "s", "id", &patch])
            .err()
            .expect("100 digits");
        assert!(err.message.contains("at `n`"), "{}", err.message);
    }

    #[test]
    fn object_arguments_may_come_from_a_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("object.json");
        std::fs::write(&path, r#"{"title": "from a file"}"#).expect("write");
        let arg = format!("@{}", path.display());
        let plan = plan_of(&["object", "add", "s", &arg]).expect("plan");
        assert_eq!(
            plan.call,
            Call::Post(
                "/v1/spaces/s/objects".into(),
                serde_json::json!({"title": "from a file"})
            )
        );
        let missing = format!("@{}", dir.path().join("nope.json").display());
        let err = plan_of(&["object", "add", "s", &missing])
            .err()
            .expect("no such file");
        assert_eq!(err.code, crate::exit::USAGE);
        assert!(
            err.message.contains("cannot read the object"),
            "{}",
            err.message
        );
        std::fs::write(&path, "[1]").expect("write");
        let err = plan_of(&["object", "update", "s", "id", &arg])
            .err()
            .expect("not an object");
        assert!(
            err.message.contains("must be a JSON object"),
            "{}",
            err.message
        );
    }

    #[test]
    fn paths_are_encoded() {
        let plan = plan_of(&["text", "get", "My Space", "01A", "body"]).expect("plan");
        assert_eq!(
            plan.call,
            Call::Get("/v1/spaces/My%20Space/objects/01A/text/body".into())
        );
    }

    #[test]
    fn member_commands_make_their_calls() {
        let key = "ab".repeat(32);
        let plan =
            plan_of(&["space", "add-member", "My Team", &key, "--role", "reader"]).expect("plan");
        assert_eq!(
            plan.call,
            Call::Post(
                "/v1/spaces/My%20Team/members".into(),
                json!({"identity_key": key, "role": "reader"})
            )
        );
        let plan = plan_of(&["space", "join", &key.to_uppercase()]).expect("plan");
        assert_eq!(
            plan.call,
            Call::Post(
                "/v1/spaces/join".into(),
                json!({"space_key": key, "name": null, "timeout_ms": 30_000})
            )
        );
        assert_eq!(plan.timeout, REQUEST_TIMEOUT);
        let plan =
            plan_of(&["space", "join", &key, "--name", "T", "--timeout", "5m"]).expect("plan");
        assert_eq!(
            plan.call,
            Call::Post(
                "/v1/spaces/join".into(),
                json!({"space_key": key, "name": "T", "timeout_ms": 300_000})
            )
        );
        assert_eq!(plan.timeout, waiting(Duration::from_secs(300)));
        let plan = plan_of(&["space", "members", "t"]).expect("plan");
        assert_eq!(plan.call, Call::Get("/v1/spaces/t/members".into()));
        let plan = plan_of(&["space", "set-role", "My Team", &key, "admin"]).expect("plan");
        assert_eq!(
            plan.call,
            Call::Put(
                format!("/v1/spaces/My%20Team/members/{key}"),
                json!({"role": "admin"})
            )
        );
        let plan = plan_of(&["space", "remove-member", "t", &key.to_uppercase()]).expect("plan");
        assert_eq!(
            plan.call,
            Call::Delete(format!("/v1/spaces/t/members/{key}"))
        );
    }

    #[test]
    fn invitation_commands_make_their_calls() {
        let plan = plan_of(&["invite", "create", "My Team"]).expect("plan");
        assert_eq!(
            plan.call,
            Call::Post(
                "/v1/spaces/My%20Team/invitations".into(),
                json!({
                    "role": "editor", "auth": "pin", "guest_key": null, "multi_use": false,
                    "timeout_ms": 180_000, "lifetime_ms": 86_400_000
                })
            )
        );
        let key = "cd".repeat(32);
        let plan = plan_of(&[
            "invite",
            "create",
            "t",
            "--role",
            "reader",
            "--auth",
            "key",
            "--guest-key",
            &key,
            "--multi-use",
            "--timeout",
            "90s",
            "--lifetime",
            "7d",
        ])
        .expect("plan");
        assert_eq!(
            plan.call,
            Call::Post(
                "/v1/spaces/t/invitations".into(),
                json!({
                    "role": "reader", "auth": "key", "guest_key": key, "multi_use": true,
                    "timeout_ms": 90_000, "lifetime_ms": 7 * 86_400_000
                })
            )
        );
        let plan = plan_of(&["invite", "create", "t", "--auth", "none"]).expect("plan");
        let Call::Post(_, body) = plan.call else {
            panic!("not a post")
        };
        assert_eq!(body["auth"], "none");

        let plan = plan_of(&["invite", "list"]).expect("plan");
        assert_eq!(plan.call, Call::Get("/v1/invitations".into()));
        let plan = plan_of(&["invite", "list", "My Team"]).expect("plan");
        assert_eq!(
            plan.call,
            Call::Get("/v1/invitations?space=My%20Team".into())
        );
        let plan = plan_of(&["invite", "cancel", "0f1e"]).expect("plan");
        assert_eq!(
            plan.call,
            Call::Post("/v1/invitations/0f1e/cancel".into(), json!({}))
        );
    }

    #[test]
    fn guest_keys_go_with_key_auth_only() {
        let err = plan_of(&["invite", "create", "t", "--auth", "key"])
            .err()
            .expect("no guest key");
        assert_eq!(err.code, crate::exit::USAGE);
        assert!(err.message.contains("--guest-key"), "{}", err.message);
        let key = "cd".repeat(32);
        for auth in [&[][..], &["--auth", "pin"][..], &["--auth", "none"][..]] {
            let mut args = vec!["invite", "create", "t", "--guest-key", &key];
            args.extend_from_slice(auth);
            let err = plan_of(&args).err().expect("guest key without key auth");
            assert_eq!(err.code, crate::exit::USAGE);
            assert!(
                err.message.contains("only for `--auth key`"),
                "{}",
                err.message
            );
        }
    }

    #[test]
    fn query_bodies_carry_parsed_where_clauses() {
        let plan = plan_of(&[
            "query",
            "s",
            "--type",
            "Task",
            "--where",
            "done=true",
            "--where",
            "name=Ada",
        ])
        .expect("plan");
        let body = json!({
            "type": "Task",
            "where": [{"path": "done", "value": true}, {"path": "name", "value": "Ada"}],
            "include_deleted": false
        });
        assert_eq!(plan.call, Call::Post("/v1/spaces/s/query".into(), body));
    }
}
