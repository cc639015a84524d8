//! `invite accept` and `device join` (the same handshake, for a space or for an
//! identity): asks for the auth code on a terminal when it is not given and the
//! invitation is a `pin` one (the code says which), sends one
//! `POST /v1/invitations/accept` and waits for the outcome. State changes are shown as they
//! happen (on stderr, or as JSON lines with `--json --progress`), through the API's progress
//! stream; `--json` alone makes a plain request and prints only the final document. A
//! failed handshake exits 1 with the node's message (terminal state and reason).

use std::io::{BufRead, IsTerminal, Write};
use std::time::Duration;

use anyhow::Context;
use serde_json::{json, Value};

use echo_actors::invitation::{AuthMethod, InvitationCode};

use crate::cli::{parse_auth_code, InviteAcceptArgs};
use crate::client::{waiting, Client};
use crate::commands::{emit, millis};
use crate::output;
use crate::paths::DataDir;

/// Which command accepts: `invite accept` or `device join` (with the name the joining
/// device gives itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Accepting {
    Invitation,
    Device { device_name: Option<String> },
}

impl Accepting {
    fn path(&self) -> &'static str {
        match self {
            Accepting::Invitation => "/v1/invitations/accept",
            Accepting::Device { .. } => "/v1/devices/join",
        }
    }

    fn human(&self, answer: &Value) -> String {
        match self {
            Accepting::Invitation => output::accepted(answer),
            Accepting::Device { .. } => output::device_joined(answer),
        }
    }
}

/// The request `invite accept` (or `device join`) makes.
#[derive(Debug, Clone, PartialEq)]
pub struct AcceptPlan {
    /// `/v1/invitations/accept`, with `?progress=true` for the stream.
    pub path: String,
    pub body: Value,
    /// Read the answer as a progress stream (NDJSON), not as one JSON document.
    pub stream: bool,
    /// The client's timeout for the whole exchange.
    pub timeout: Duration,
}

/// The request for `args`, with the auth code (given or asked for) already decided.
pub fn plan(
    args: &InviteAcceptArgs,
    json: bool,
    auth_code: Option<String>,
    accepting: &Accepting,
) -> AcceptPlan {
    let stream = !json || args.progress;
    let path = if stream {
        format!("{}?progress=true", accepting.path())
    } else {
        accepting.path().to_string()
    };
    let mut body = json!({
        "invitation_code": args.code,
        "auth_code": auth_code,
        "timeout_ms": millis(args.timeout),
    });
    if let Accepting::Device {
        device_name: Some(name),
    } = accepting
    {
        body["device_name"] = json!(name);
    }
    AcceptPlan {
        path,
        body,
        stream,
        timeout: waiting(args.timeout),
    }
}

/// Runs `invite accept` or `device join`.
pub fn run(
    dir: &DataDir,
    args: &InviteAcceptArgs,
    json: bool,
    accepting: Accepting,
) -> anyhow::Result<()> {
    // Find the daemon before asking anything: no point typing a code for nobody.
    let client = Client::connect(dir)?;
    let auth_code = match &args.auth_code {
        Some(code) => Some(code.clone()),
        None if needs_pin(&args.code) && std::io::stdin().is_terminal() => {
            ask_auth_code(&mut std::io::stdin().lock(), &mut std::io::stderr())
                .context("cannot read the auth code from the terminal")?
        }
        None => None,
    };
    let plan = plan(args, json, auth_code, &accepting);
    let client = client.with_timeout(plan.timeout);
    if !plan.stream {
        let accepted = client.post(&plan.path, &plan.body)?;
        return emit(&format!("{}\n", output::json(&accepted)));
    }
    for line in client.post_lines(&plan.path, &plan.body)? {
        let line =
            line.context("the invitation's progress stream broke off (did the daemon stop?)")?;
        if line.trim().is_empty() {
            continue;
        }
        let event: Value = serde_json::from_str(&line)
            .context("the daemon sent a progress line that is not JSON")?;
        if json {
            emit(&format!("{}\n", output::json(&event)))?;
        }
        match Step::of(&event) {
            Step::State(state) => {
                if !json {
                    eprintln!("{state}");
                }
            }
            Step::Success => {
                if !json {
                    eprintln!("SUCCESS");
                    emit(&accepting.human(&event))?;
                }
                return Ok(());
            }
            Step::Failure(message) => anyhow::bail!(message),
        }
    }
    anyhow::bail!(
        "the daemon ended the invitation's progress stream without an outcome (did it stop?)"
    )
}

/// Whether the invitation code asks for a 6-digit auth code. A code that does not decode
/// asks for nothing here: the node says what is wrong with it.
fn needs_pin(code: &str) -> bool {
    InvitationCode::decode(code).is_ok_and(|c| c.auth == AuthMethod::Pin)
}

/// What one line of the progress stream says.
#[derive(Debug, PartialEq)]
enum Step {
    /// A state on the way (CONNECTING, ...).
    State(String),
    /// The last line: accepted.
    Success,
    /// The last line: failed, with the node's message.
    Failure(String),
}

impl Step {
    fn of(event: &Value) -> Step {
        let state = event.get("state").and_then(Value::as_str).unwrap_or("?");
        match state {
            "SUCCESS" => Step::Success,
            "ERROR" => Step::Failure(
                event
                    .pointer("/error/message")
                    .and_then(Value::as_str)
                    .map_or_else(|| format!("the invitation failed: {event}"), str::to_string),
            ),
            other => Step::State(other.to_string()),
        }
    }
}

/// Asks for the auth code on `prompt` (stderr) and reads it from `input` until it is 6
/// digits; an empty line or the end of input sends none.
fn ask_auth_code(
    input: &mut impl BufRead,
    prompt: &mut impl Write,
) -> std::io::Result<Option<String>> {
    loop {
        write!(
            prompt,
            "auth code (6 digits, from the person who invited you; Enter if they gave none): "
        )?;
        prompt.flush()?;
        let mut line = String::new();
        if input.read_line(&mut line)? == 0 || line.trim().is_empty() {
            return Ok(None);
        }
        match parse_auth_code(&line) {
            Ok(code) => return Ok(Some(code)),
            Err(e) => writeln!(prompt, "{e}")?,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command, InviteCommand};
    use clap::Parser;

    fn args(argv: &[&str]) -> InviteAcceptArgs {
        let cli = Cli::try_parse_from(
            ["echo-node", "invite", "accept"]
                .into_iter()
                .chain(argv.iter().copied()),
        )
        .expect("parses");
        match cli.command {
            Command::Invite(InviteCommand::Accept(args)) => args,
            other => panic!("not invite accept: {other:?}"),
        }
    }

    #[test]
    fn accept_sends_the_code_and_the_timeout() {
        let a = args(&["CODE1", "--auth-code", "012345", "--timeout", "90s"]);
        let p = plan(&a, false, a.auth_code.clone(), &Accepting::Invitation);
        assert_eq!(p.path, "/v1/invitations/accept?progress=true");
        assert!(p.stream, "people see the states");
        assert_eq!(
            p.body,
            json!({"invitation_code": "CODE1", "auth_code": "012345", "timeout_ms": 90_000})
        );
        assert_eq!(p.timeout, waiting(Duration::from_secs(90)));

        let a = args(&["CODE1"]);
        let p = plan(&a, true, None, &Accepting::Invitation);
        assert_eq!(
            p.path, "/v1/invitations/accept",
            "--json alone: one document"
        );
        assert!(!p.stream);
        assert_eq!(
            p.body,
            json!({"invitation_code": "CODE1", "auth_code": null, "timeout_ms": 180_000})
        );
        let a = args(&["CODE1", "--progress"]);
        assert!(
            plan(&a, true, None, &Accepting::Invitation).stream,
            "--json --progress: JSON lines"
        );
        // `device join` makes the same request of its own route.
        let p = plan(&a, false, None, &Accepting::Device { device_name: None });
        assert_eq!(p.path, "/v1/devices/join?progress=true");
        assert_eq!(
            p.body,
            json!({"invitation_code": "CODE1", "auth_code": null, "timeout_ms": 180_000})
        );
        // ... with the name the device gives itself.
        let named = Accepting::Device {
            device_name: Some("phone".into()),
        };
        assert_eq!(
            plan(&a, false, None, &named).body,
            json!({"invitation_code": "CODE1", "auth_code": null, "timeout_ms": 180_000,
                   "device_name": "phone"})
        );
    }

    #[test]
    fn auth_codes_are_six_digits() {
        for bad in ["12345", "1234567", "12345a", "１２３４５６", ""] {
            let err =
                Cli::try_parse_from(["echo-node", "invite", "accept", "C", "--auth-code", bad])
                    .expect_err(bad);
            assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation, "{bad}");
        }
        let err = Cli::try_parse_from(["echo-node", "invite", "accept", "C", "--timeout", "soon"])
            .expect_err("bad DUR");
        assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation);
    }

    #[test]
    fn the_prompt_asks_again_until_six_digits() {
        let mut input = std::io::Cursor::new(b"12 34\n 654321 \n".to_vec());
        let mut prompt = Vec::new();
        let code = ask_auth_code(&mut input, &mut prompt).expect("reads");
        assert_eq!(code.as_deref(), Some("654321"));
        let prompt = String::from_utf8(prompt).expect("utf-8");
        assert_eq!(prompt.matches("auth code (6 digits").count(), 2, "{prompt}");
        assert!(prompt.contains("not an auth code"), "{prompt}");

        for empty in ["\n", ""] {
            let mut input = std::io::Cursor::new(empty.as_bytes().to_vec());
            assert_eq!(
                ask_auth_code(&mut input, &mut Vec::new()).expect("reads"),
                None
            );
        }
    }

    #[test]
    fn only_pin_invitations_ask_for_a_code() {
        use echo_actors::invitation::InvitationKind;
        use echo_actors::signal::space_topic;
        use echo_actors::types::KeyPair;

        let space_key = KeyPair::from_secret([1; 32]).public();
        let code = |auth| {
            InvitationCode {
                kind: InvitationKind::Space,
                invitation_id: [7; 16],
                auth,
                topic: space_topic(&space_key),
                space_key,
                created_ms: 1_750_000_000_000,
                lifetime_ms: 60_000,
                host_device: KeyPair::from_secret([2; 32]).public(),
                addrs: vec![],
                signal: vec![],
            }
            .encode()
        };
        assert!(needs_pin(&code(AuthMethod::Pin)));
        assert!(!needs_pin(&code(AuthMethod::None)));
        assert!(!needs_pin(&code(AuthMethod::Key)));
        assert!(!needs_pin("not-a-code"), "the node reports it");
        assert!(!needs_pin(""));
    }

    #[test]
    fn progress_lines_end_in_success_or_the_error() {
        assert_eq!(
            Step::of(&json!({"state": "CONNECTING"})),
            Step::State("CONNECTING".into())
        );
        assert_eq!(
            Step::of(&json!({"state": "SUCCESS", "space_key": "ab", "role": "editor"})),
            Step::Success
        );
        assert_eq!(
            Step::of(&json!({"state": "ERROR", "error": {
                "code": "invitation_error",
                "message": "invitation ERROR: invalid auth code, 2 attempts left"
            }})),
            Step::Failure("invitation ERROR: invalid auth code, 2 attempts left".into())
        );
    }
}
