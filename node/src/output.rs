//! Rendering command results. With `--json` the CLI prints the API's JSON unchanged (one
//! compact document, or one line per stream event); otherwise these functions turn it into
//! `key: value` lines and aligned tables. All pure: JSON in, text out.

use serde_json::{Map, Value};

/// Compact JSON: the `--json` form of any result.
pub fn json(value: &Value) -> String {
    value.to_string()
}

/// A string field, or `-` when missing or null.
fn field(v: &Value, key: &str) -> String {
    match v.get(key) {
        None | Some(Value::Null) => "-".to_string(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// `key: value` lines with the values aligned.
pub fn key_values(pairs: &[(&str, String)]) -> String {
    let width = pairs.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    pairs
        .iter()
        .map(|(k, v)| format!("{:<width$}  {v}\n", format!("{k}:"), width = width + 1))
        .collect()
}

/// An aligned table with a header row; columns separated by two spaces.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        format!("{}\n", padded.join("  ").trim_end())
    };
    let mut out = line(headers.to_vec());
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

pub fn identity_created(v: &Value) -> String {
    let mut out = key_values(&[
        ("identity_key", field(v, "identity_key")),
        ("device_key", field(v, "device_key")),
        ("name", field(v, "name")),
        ("seed_phrase", field(v, "seed_phrase")),
    ]);
    out.push_str(
        "\nWrite the seed phrase down and keep it somewhere safe: it is shown only this once \
         and it is the only way to recover this identity.\n",
    );
    out
}

pub fn identity_recovered(v: &Value) -> String {
    let mut out = key_values(&[
        ("identity_key", field(v, "identity_key")),
        ("device_key", field(v, "device_key")),
        ("name", field(v, "name")),
    ]);
    out.push_str(
        "\nThe identity is back on this node, with this node as a new device authorised by \
         the identity key. Its spaces come back as soon as this node reaches a peer that \
         holds them (another device of the identity, or any member of them); `space list` \
         shows them as they do.\n",
    );
    out
}

pub fn identity(v: &Value) -> String {
    key_values(&[
        ("identity_key", field(v, "identity_key")),
        ("device_key", field(v, "device_key")),
        ("name", field(v, "name")),
        ("device_name", field(v, "device_name")),
    ])
}

pub fn space(v: &Value) -> String {
    key_values(&[
        ("space_key", field(v, "space_key")),
        ("name", field(v, "name")),
    ])
}

pub fn spaces(v: &Value) -> String {
    let list = v.as_array().map(Vec::as_slice).unwrap_or_default();
    if list.is_empty() {
        return "no spaces yet (create one with `echo-node space create`)\n".to_string();
    }
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|s| vec![field(s, "space_key"), field(s, "name")])
        .collect();
    table(&["SPACE_KEY", "NAME"], &rows)
}

pub fn member(v: &Value) -> String {
    key_values(&[
        ("identity_key", field(v, "identity_key")),
        ("role", field(v, "role")),
    ])
}

pub fn members(v: &Value) -> String {
    let list = v.as_array().map(Vec::as_slice).unwrap_or_default();
    if list.is_empty() {
        return "no members\n".to_string();
    }
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|m| {
            let online = match m.get("online").and_then(Value::as_bool) {
                Some(true) => "online",
                Some(false) => "offline",
                None => "",
            };
            vec![
                field(m, "identity_key"),
                field(m, "role"),
                online.to_string(),
            ]
        })
        .collect();
    table(&["IDENTITY_KEY", "ROLE", "PRESENCE"], &rows)
}

/// `device list`: one row per device of the identity.
pub fn devices(v: &Value) -> String {
    let list = v.as_array().map(Vec::as_slice).unwrap_or_default();
    let flag = |d: &Value, key: &str, yes: &str, no: &str| match d.get(key).and_then(Value::as_bool)
    {
        Some(true) => yes.to_string(),
        Some(false) => no.to_string(),
        None => String::new(),
    };
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|d| {
            vec![
                field(d, "device_key"),
                field(d, "name"),
                flag(d, "revoked", "revoked", "authorized"),
                flag(d, "online", "online", "offline"),
                flag(d, "this_device", "this device", ""),
            ]
        })
        .collect();
    table(&["DEVICE_KEY", "NAME", "STATE", "PRESENCE", ""], &rows)
}

/// `device rename`: the name, and whether the identity space shows it yet.
pub fn device_renamed(v: &Value) -> String {
    let mut out = key_values(&[
        ("device_key", field(v, "device_key")),
        ("name", field(v, "name")),
    ]);
    if v.get("shown").and_then(Value::as_bool) == Some(false) {
        out.push_str(
            "(kept on this device; the identity's other devices see it once this device is \
             admitted to the identity space)\n",
        );
    }
    out
}

/// `device revoke`: where the revocation was written, and where not.
pub fn device_revoked(v: &Value) -> String {
    let keys = |key: &str| key_list(v, key);
    let mut out = key_values(&[
        ("device_key", field(v, "device_key")),
        ("revoked_in", keys("revoked_in")),
        ("already_in", keys("already_in")),
    ]);
    for s in v
        .get("skipped")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        out.push_str(&format!(
            "skipped {}: {}\n",
            field(s, "space_key"),
            field(s, "reason")
        ));
    }
    out
}

/// `space verdicts`: feeds, denied blocks, members.
pub fn verdicts(v: &Value) -> String {
    let rows = |key: &str| -> Vec<Vec<String>> {
        v.get(key)
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .map(|(k, v)| {
                        vec![
                            k.clone(),
                            v.as_str().map_or_else(|| v.to_string(), str::to_string),
                        ]
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut out = table(&["FEED", "LENGTH"], &rows("heads"));
    let denied = rows("denied");
    if denied.is_empty() {
        out.push_str("no denied blocks\n");
    } else {
        out.push_str(&table(&["DENIED_BLOCK", "REASON"], &denied));
    }
    out.push_str(&table(&["IDENTITY_KEY", "ROLE"], &rows("members")));
    out
}

pub fn object_id(v: &Value) -> String {
    key_values(&[("id", field(v, "id"))])
}

pub fn object(v: &Value) -> String {
    let mut out = serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string());
    out.push('\n');
    out
}

pub fn deleted(v: &Value) -> String {
    key_values(&[("deleted", field(v, "id"))])
}

/// The user's own fields of an object (no `@` members), compact.
fn own_fields(object: &Value) -> String {
    let fields: Map<String, Value> = object
        .as_object()
        .map(|m| {
            m.iter()
                .filter(|(k, _)| !k.starts_with('@'))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default();
    Value::Object(fields).to_string()
}

/// `Task`, or `Task (deleted)` for a soft-deleted object.
fn type_label(object: &Value) -> String {
    let mut label = field(object, "@type");
    if object.get("@deleted") == Some(&Value::Bool(true)) {
        label.push_str(" (deleted)");
    }
    label
}

pub fn objects(v: &Value) -> String {
    let list = v.as_array().map(Vec::as_slice).unwrap_or_default();
    if list.is_empty() {
        return "no matching objects\n".to_string();
    }
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|o| vec![field(o, "@id"), type_label(o), own_fields(o)])
        .collect();
    table(&["ID", "TYPE", "FIELDS"], &rows)
}

pub fn text(v: &Value) -> String {
    let mut out = v
        .get("text")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    out.push('\n');
    out
}

/// The answer of `text insert` / `text delete`: what changed and the new length (the
/// API no longer sends the whole text back; `text get` prints it).
pub fn text_edit(v: &Value) -> String {
    let count = |key: &str| v.get(key).and_then(Value::as_u64);
    let (verb, n) = match (count("inserted"), count("deleted")) {
        (Some(n), _) => ("inserted", n),
        (None, Some(n)) => ("deleted", n),
        (None, None) => return json(v) + "\n",
    };
    let unit = if n == 1 { "character" } else { "characters" };
    format!(
        "{verb} {n} {unit} at {}; length {}\n",
        field(v, "index"),
        field(v, "length")
    )
}

/// One watch event as one line: `KIND  ID  TYPE  FIELDS`.
pub fn change_event(v: &Value) -> String {
    let object = v.get("object").unwrap_or(&Value::Null);
    format!(
        "{:<7}  {}  {}  {}\n",
        field(v, "kind"),
        field(v, "id"),
        field(object, "@type"),
        own_fields(object)
    )
}

/// A time in Unix milliseconds as `2025-06-01 12:00:00 UTC`; `-` when missing.
pub fn utc_time(v: &Value, key: &str) -> String {
    let Some(ms) = v.get(key).and_then(Value::as_u64) else {
        return field(v, key);
    };
    let secs = ms / 1000;
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm, proleptic Gregorian).
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// `invite create`: the invitation code alone on its line (to copy it), then the auth code
/// and when the invitation expires.
pub fn invitation_created(v: &Value) -> String {
    created_code(v, "the guest", "echo-node invite accept CODE")
}

pub fn device_invitation_created(v: &Value) -> String {
    created_code(
        v,
        "the new device",
        "echo-node device join CODE on a fresh data dir",
    )
}

/// An invitation code just made, for `who`, who then runs `command`.
fn created_code(v: &Value, who: &str, command: &str) -> String {
    let mut out = format!(
        "invitation code (give it to {who}):\n{}\n\n",
        field(v, "invitation_code")
    );
    let has_pin = v.get("auth_code").is_some_and(Value::is_string);
    let mut pairs = Vec::new();
    if has_pin {
        pairs.push(("auth_code", field(v, "auth_code")));
    }
    pairs.push(("invitation_id", field(v, "invitation_id")));
    pairs.push(("expires_at", utc_time(v, "expires_at")));
    out.push_str(&key_values(&pairs));
    out.push_str(&if has_pin {
        format!(
            "\nTell {who} the auth code over another channel than the invitation code (e.g. by \
             phone); {who} runs `{command}` and types it.\n"
        )
    } else {
        format!("\n{} runs `{command}`.\n", capitalized(who))
    });
    out
}

fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// One invitation (`invite cancel`).
pub fn invitation(v: &Value) -> String {
    key_values(&[
        ("invitation_id", field(v, "invitation_id")),
        ("space_key", field(v, "space_key")),
        ("state", field(v, "state")),
        ("reason", field(v, "reason")),
        ("auth", field(v, "auth")),
        ("role", field(v, "role")),
        ("multi_use", field(v, "multi_use")),
        ("attempts_left", field(v, "attempts_left")),
        ("uses", field(v, "uses")),
        ("expires_at", utc_time(v, "expires_at")),
    ])
}

/// `invite list`: one row per invitation, the reason (free text) last.
pub fn invitations(v: &Value) -> String {
    let list = v.as_array().map(Vec::as_slice).unwrap_or_default();
    if list.is_empty() {
        return "no invitations (create one with `echo-node invite create SPACE`)\n".to_string();
    }
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|i| {
            vec![
                field(i, "invitation_id"),
                field(i, "space_key"),
                field(i, "state"),
                field(i, "auth"),
                field(i, "role"),
                field(i, "multi_use"),
                field(i, "attempts_left"),
                field(i, "uses"),
                utc_time(i, "expires_at"),
                field(i, "reason"),
            ]
        })
        .collect();
    table(
        &[
            "INVITATION_ID",
            "SPACE_KEY",
            "STATE",
            "AUTH",
            "ROLE",
            "MULTI_USE",
            "ATTEMPTS_LEFT",
            "USES",
            "EXPIRES_AT",
            "REASON",
        ],
        &rows,
    )
}

/// `invite accept` on SUCCESS.
/// The strings of the list `key` of `v`, separated by spaces; `-` for none.
fn key_list(v: &Value, key: &str) -> String {
    let list: Vec<&str> = v
        .get(key)
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if list.is_empty() {
        "-".to_string()
    } else {
        list.join(" ")
    }
}

pub fn device_joined(v: &Value) -> String {
    let keys = |key: &str| key_list(v, key);
    key_values(&[
        ("identity_key", field(v, "identity_key")),
        ("device_key", field(v, "device_key")),
        ("spaces", keys("spaces")),
        ("pending", keys("pending")),
    ])
}

pub fn accepted(v: &Value) -> String {
    key_values(&[
        ("space_key", field(v, "space_key")),
        ("role", field(v, "role")),
    ])
}

pub fn status(v: &Value) -> String {
    let mut out = key_values(&[
        ("device_key", field(v, "device_key")),
        ("identity_key", field(v, "identity_key")),
        ("listen", field(v, "listen")),
        ("revoked", field(v, "revoked")),
    ]);
    if v.get("revoked").and_then(Value::as_bool) == Some(true) {
        out.push_str(
            "\nthis device was revoked by its identity: nobody accepts what it writes. Recover \
             the identity from its seed phrase, or join it as a new device, on a fresh data dir.\n",
        );
    }
    let spaces = v
        .get("spaces")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    if spaces.is_empty() {
        out.push_str("\nno spaces\n");
        return out;
    }
    for space in spaces {
        out.push_str(&format!(
            "\nspace {} ({}), role {}\n",
            field(space, "space_key"),
            field(space, "name"),
            field(space, "role")
        ));
        let feeds = space
            .get("feeds")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let rows: Vec<Vec<String>> = feeds
            .iter()
            .map(|f| {
                vec![
                    field(f, "designation"),
                    field(f, "feed_key"),
                    field(f, "device_key"),
                    field(f, "length"),
                ]
            })
            .collect();
        out.push_str(&table(&["FEED", "FEED_KEY", "DEVICE_KEY", "LENGTH"], &rows));
        let peers = space
            .get("peers")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        if peers.is_empty() {
            out.push_str("no connected peers\n");
        } else {
            let rows: Vec<Vec<String>> = peers
                .iter()
                .map(|p| vec![field(p, "device_key"), field(p, "address")])
                .collect();
            out.push_str(&table(&["PEER_DEVICE_KEY", "ADDRESS"], &rows));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn text_edits_say_what_changed() {
        assert_eq!(
            text_edit(&json!({"length": 12, "index": 5, "inserted": 1})),
            "inserted 1 character at 5; length 12\n"
        );
        assert_eq!(
            text_edit(&json!({"length": 0, "index": 0, "deleted": 3})),
            "deleted 3 characters at 0; length 0\n"
        );
    }

    #[test]
    fn key_values_align() {
        let out = key_values(&[("id", "1".into()), ("space_key", "ab".into())]);
        assert_eq!(out, "id:         1\nspace_key:  ab\n");
    }

    #[test]
    fn tables_align_and_trim() {
        let out = table(
            &["A", "NAME"],
            &[
                vec!["long-value".into(), "x".into()],
                vec!["b".into(), "-".into()],
            ],
        );
        assert_eq!(out, "A           NAME\nlong-value  x\nb           -\n");
    }

    #[test]
    fn identity_creation_tells_to_write_the_phrase_down() {
        let out = identity_created(
            &json!({"identity_key": "i", "device_key": "d", "seed_phrase": "w1 w2", "name": null}),
        );
        assert!(out.contains("seed_phrase:   w1 w2"));
        assert!(out.contains("name:          -"));
        assert!(out.contains("Write the seed phrase down"));
    }

    #[test]
    fn object_tables_hide_members_and_mark_deleted() {
        let out = objects(&json!([
            {"@id": "01A", "@type": "Task", "@meta": {}, "@deleted": false, "title": "a"},
            {"@id": "01B", "@deleted": true, "n": 3}
        ]));
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "ID   TYPE         FIELDS");
        assert_eq!(lines[1], "01A  Task         {\"title\":\"a\"}");
        assert_eq!(lines[2], "01B  - (deleted)  {\"n\":3}");
        assert_eq!(objects(&json!([])), "no matching objects\n");
    }

    #[test]
    fn empty_space_list_says_how_to_create_one() {
        assert!(spaces(&json!([])).contains("echo-node space create"));
        assert_eq!(
            spaces(&json!([{"space_key": "ab", "name": "Team"}])),
            "SPACE_KEY  NAME\nab         Team\n"
        );
    }

    #[test]
    fn status_lists_spaces_with_feeds() {
        let out = status(&json!({
            "device_key": "d", "identity_key": null, "listen": "0.0.0.0:0",
            "spaces": [{"space_key": "s", "name": null, "feeds": [
                {"feed_key": "f", "designation": "control", "device_key": "d", "length": 2}
            ]}]
        }));
        assert!(out.contains("identity_key:  -"));
        assert!(out.contains("space s (-), role -"));
        assert!(!out.contains("was revoked"));
        assert!(out.contains("control  f         d           2"));
        assert!(out.contains("no connected peers"));
        let out = status(&json!({
            "device_key": "d", "identity_key": "i", "listen": "127.0.0.1:5", "revoked": true,
            "spaces": [{"space_key": "s", "name": "n", "role": "removed", "feeds": [],
                "peers": [{"device_key": "p", "address": "127.0.0.1:6"}]}]
        }));
        assert!(
            out.contains("PEER_DEVICE_KEY  ADDRESS\np                127.0.0.1:6\n"),
            "{out}"
        );
        assert!(out.contains("revoked:       true\n"), "{out}");
        assert!(
            out.contains("this device was revoked by its identity"),
            "{out}"
        );
        assert!(out.contains("space s (n), role removed\n"), "{out}");
    }

    #[test]
    fn members_table() {
        assert_eq!(
            members(
                &json!([{"identity_key": "ab", "role": "owner", "online": true}, {"identity_key": "cd", "role": "editor", "online": false}])
            ),
            "IDENTITY_KEY  ROLE    PRESENCE\nab            owner   online\ncd            editor  offline\n"
        );
        assert_eq!(members(&json!([])), "no members\n");
    }

    #[test]
    fn verdicts_tables() {
        let v = json!({
            "heads": {"f1": 3},
            "denied": {"f1:2": "member x is reader and may not write data"},
            "members": {"ab": "owner"},
            "feeds": {}
        });
        assert_eq!(
            verdicts(&v),
            "FEED  LENGTH\nf1    3\nDENIED_BLOCK  REASON\nf1:2          member x is reader and may not write data\nIDENTITY_KEY  ROLE\nab            owner\n"
        );
        let none = json!({"heads": {}, "denied": {}, "members": {}, "feeds": {}});
        assert!(verdicts(&none).contains("no denied blocks\n"));
    }

    #[test]
    fn times_are_utc() {
        assert_eq!(utc_time(&json!({"t": 0}), "t"), "1970-01-01 00:00:00 UTC");
        assert_eq!(
            utc_time(&json!({"t": 951_782_400_000_u64}), "t"),
            "2000-02-29 00:00:00 UTC"
        );
        assert_eq!(
            utc_time(&json!({"t": 1_767_225_599_999_u64}), "t"),
            "2025-12-31 23:59:59 UTC"
        );
        assert_eq!(utc_time(&json!({}), "t"), "-");
    }

    #[test]
    fn created_invitations_put_the_code_on_its_own_line() {
        let out = invitation_created(&json!({
            "invitation_code": "CODE", "auth_code": "012345",
            "invitation_id": "i1", "expires_at": 0
        }));
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[1], "CODE");
        assert!(out.contains("auth_code:      012345\n"), "{out}");
        assert!(
            out.contains("expires_at:     1970-01-01 00:00:00 UTC\n"),
            "{out}"
        );
        assert!(out.contains("another channel"), "{out}");
        let out = invitation_created(&json!({
            "invitation_code": "CODE", "auth_code": null, "invitation_id": "i1", "expires_at": 0
        }));
        assert!(!out.contains("auth_code"), "{out}");
    }

    #[test]
    fn invitation_tables() {
        let out = invitations(&json!([{
            "invitation_id": "i1", "space_key": "ab", "state": "ERROR",
            "reason": "too many attempts", "auth": "pin", "role": "editor",
            "multi_use": false, "attempts_left": 0, "uses": 0, "expires_at": 0
        }]));
        let lines: Vec<&str> = out.lines().collect();
        assert!(
            lines[0].starts_with("INVITATION_ID  SPACE_KEY  STATE"),
            "{out}"
        );
        assert!(
            lines[1].ends_with("1970-01-01 00:00:00 UTC  too many attempts"),
            "{out}"
        );
        assert!(lines[1].contains("pin   editor  false"), "{out}");
        assert!(invitations(&json!([])).contains("invite create"));
        assert!(
            invitation(&json!({"invitation_id": "i1", "state": "CANCELLED"}))
                .contains("state:          CANCELLED\n")
        );
    }

    #[test]
    fn change_events_are_one_line() {
        let out = change_event(
            &json!({"space_key": "s", "id": "01A", "kind": "added", "object": {"@type": "Task", "t": 1}}),
        );
        assert_eq!(out, "added    01A  Task  {\"t\":1}\n");
    }
}
