//! [`Api`]: a node's local API, for tests that need many cheap requests.

use super::*;

/// A node's local API, for tests that need many cheap requests (no CLI process each).
#[derive(Debug, Clone)]
pub struct Api {
    pub url: String,
    pub token: String,
}

impl Api {
    /// `POST /v1/spaces/{space}/objects`; returns the new id (panics unless 201).
    pub fn add(&self, space: &str, object: &Value) -> String {
        let body = object.to_string();
        let path = format!("/v1/spaces/{space}/objects");
        let res = http(
            &self.url,
            "POST",
            &path,
            Some(&self.token),
            Some(body.as_bytes()),
        );
        assert_eq!(res.status, 201, "POST {path}: {}", res.body);
        res.json()
            .and_then(|v| v["id"].as_str().map(str::to_owned))
            .unwrap_or_else(|| panic!("POST {path}: no id in {}", res.body))
    }

    /// Whether `GET /v1/spaces/{space}/objects/{id}` finds the object.
    pub fn has(&self, space: &str, id: &str) -> bool {
        let path = format!("/v1/spaces/{space}/objects/{id}");
        let res = http(&self.url, "GET", &path, Some(&self.token), None);
        match res.status {
            200 => true,
            404 => false,
            other => panic!("GET {path}: {other} {}", res.body),
        }
    }
}
