//! The Azure Resource Manager token, found in this order: a service principal
//! (`AZURE_TENANT_ID` / `AZURE_CLIENT_ID` / `AZURE_CLIENT_SECRET`, client-credentials grant at
//! the identity platform), `AZURE_ACCESS_TOKEN`, then `az account get-access-token`. The token
//! is never shown: Debug hides it and server text is scrubbed of it.

use std::fmt;

use serde_json::Value;

/// A bearer token and where it came from.
#[derive(Clone)]
pub struct Token {
    secret: String,
    /// Which of the three sources, for messages.
    pub source: String,
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Token(<redacted>, from {})", self.source)
    }
}

impl Token {
    pub fn new(secret: &str, source: &str) -> Token {
        Token {
            secret: secret.trim().to_string(),
            source: source.to_string(),
        }
    }

    /// The Authorization header's value.
    pub fn bearer(&self) -> String {
        format!("Bearer {}", self.secret)
    }

    /// `text` without the token or the client secret in it.
    pub fn scrub(&self, text: &str) -> String {
        let mut text = scrub(text, &self.secret);
        if let Ok(secret) = std::env::var("AZURE_CLIENT_SECRET") {
            text = scrub(&text, secret.trim());
        }
        text
    }
}

fn scrub(text: &str, secret: &str) -> String {
    if secret.is_empty() {
        text.to_string()
    } else {
        text.replace(secret, "<redacted>")
    }
}

/// No token could be had.
#[derive(Debug, thiserror::Error)]
#[error("Azure credentials: {0}")]
pub struct AuthError(pub String);

/// The first source that gives a token for `resource` (ARM's base URL).
pub fn token(agent: &ureq::Agent, authority: &str, resource: &str) -> Result<Token, AuthError> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let principal = (
        var("AZURE_TENANT_ID"),
        var("AZURE_CLIENT_ID"),
        var("AZURE_CLIENT_SECRET"),
    );
    if let (Some(tenant), Some(client), Some(secret)) = principal {
        return service_principal(agent, authority, resource, &tenant, &client, &secret);
    }
    if let Some(token) = var("AZURE_ACCESS_TOKEN") {
        return Ok(Token::new(&token, "AZURE_ACCESS_TOKEN"));
    }
    azure_cli(resource)
}

/// The client-credentials grant of the Microsoft identity platform (v2.0 endpoint).
fn service_principal(
    agent: &ureq::Agent,
    authority: &str,
    resource: &str,
    tenant: &str,
    client: &str,
    secret: &str,
) -> Result<Token, AuthError> {
    let url = format!("{authority}/{tenant}/oauth2/v2.0/token");
    let scope = format!("{}/.default", resource.trim_end_matches('/'));
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", client),
        ("client_secret", secret),
        ("scope", scope.as_str()),
    ];
    let fail = |message: String| {
        AuthError(scrub(
            &format!("service principal {client} (AZURE_CLIENT_ID) at {url}: {message}"),
            secret,
        ))
    };
    let mut response = agent
        .post(&url)
        .send_form(form)
        .map_err(|e| fail(e.to_string()))?;
    let status = response.status().as_u16();
    let body = response
        .body_mut()
        .with_config()
        .limit(1024 * 1024)
        .read_to_string()
        .map_err(|e| fail(e.to_string()))?;
    let json: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    if status != 200 {
        let said = json["error_description"]
            .as_str()
            .or(json["error"].as_str())
            .unwrap_or("no error description");
        return Err(fail(format!(
            "HTTP {status}: {}",
            said.lines().next().unwrap_or("")
        )));
    }
    let token = json["access_token"]
        .as_str()
        .ok_or_else(|| fail("the answer holds no access_token".into()))?;
    Ok(Token::new(
        token,
        &format!(
            "service principal {client} (AZURE_TENANT_ID / AZURE_CLIENT_ID / AZURE_CLIENT_SECRET)"
        ),
    ))
}

/// `az account get-access-token`, when the Azure CLI is installed and logged in.
fn azure_cli(resource: &str) -> Result<Token, AuthError> {
    let output = std::process::Command::new("az")
        .args(["account", "get-access-token", "--output", "json", "--resource"])
        .arg(resource)
        .output()
        .map_err(|e| {
            AuthError(format!(
                "no service principal (AZURE_TENANT_ID / AZURE_CLIENT_ID / AZURE_CLIENT_SECRET), no AZURE_ACCESS_TOKEN, and the Azure CLI (`az`) cannot be run: {e}"
            ))
        })?;
    let json: Value = serde_json::from_slice(&output.stdout).unwrap_or(Value::Null);
    match json["accessToken"].as_str() {
        Some(token) if output.status.success() => Ok(Token::new(token, "az account get-access-token")),
        _ => Err(AuthError(format!(
            "no service principal, no AZURE_ACCESS_TOKEN, and `az account get-access-token` failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).lines().next().unwrap_or("run `az login`")
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_never_shows() {
        let token = Token::new("eyJ0eXAiOiJKV1Qi.s3cret\n", "AZURE_ACCESS_TOKEN");
        let shown = format!("{token:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("AZURE_ACCESS_TOKEN"));
        assert_eq!(token.scrub("x eyJ0eXAiOiJKV1Qi.s3cret y"), "x <redacted> y");
    }
}
