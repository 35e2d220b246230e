//! The portal's ListAccounts and ListAccountRoles (WIRE.md §7): one page per call, decoded
//! into typed pages; `next_token`/`max_result` as the model names them (`max_result` 1–100).
//! Must not: loop over pages or cache (session/accounts.rs does), or log the bearer token.

use serde::Deserialize;

use crate::clock::BoxFuture;
use crate::oidc::http_client_helpers as h;
use crate::secret::Secret;

use super::{HttpPortal, PortalError};

/// The largest page the model allows (`MaxResultType`, 1–100): fewest round trips.
pub const MAX_RESULT: u32 = 100;

/// One account the token may use (`AccountInfo`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountInfo {
    pub account_id: String,
    #[serde(default)]
    pub account_name: Option<String>,
    #[serde(default)]
    pub email_address: Option<String>,
}

/// One page of ListAccounts; `next_token` is `None` at the end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountPage {
    pub accounts: Vec<AccountInfo>,
    pub next_token: Option<String>,
}

/// One page of ListAccountRoles: role names; `next_token` is `None` at the end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolePage {
    pub roles: Vec<String>,
    pub next_token: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListAccountsResponse {
    #[serde(default)]
    next_token: Option<String>,
    #[serde(default)]
    account_list: Option<Vec<AccountInfo>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RoleInfo {
    #[serde(default)]
    role_name: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListAccountRolesResponse {
    #[serde(default)]
    next_token: Option<String>,
    #[serde(default)]
    role_list: Option<Vec<RoleInfo>>,
}

/// An empty `nextToken` ends the listing like an absent or null one.
fn next(token: Option<String>) -> Option<String> {
    token.filter(|t| !t.is_empty())
}

pub fn decode_accounts(body: &[u8]) -> Result<AccountPage, PortalError> {
    let wire: ListAccountsResponse =
        serde_json::from_slice(body).map_err(|e| PortalError::Malformed(e.to_string()))?;
    Ok(AccountPage {
        accounts: wire.account_list.unwrap_or_default(),
        next_token: next(wire.next_token),
    })
}

pub fn decode_roles(body: &[u8]) -> Result<RolePage, PortalError> {
    let wire: ListAccountRolesResponse =
        serde_json::from_slice(body).map_err(|e| PortalError::Malformed(e.to_string()))?;
    Ok(RolePage {
        roles: wire
            .role_list
            .unwrap_or_default()
            .into_iter()
            .filter_map(|r| r.role_name)
            .collect(),
        next_token: next(wire.next_token),
    })
}

impl HttpPortal {
    /// `GET /assignment/accounts?max_result=100[&next_token=…]`.
    pub(super) fn list_accounts_page(
        &self,
        token: &Secret,
        next_token: Option<&str>,
    ) -> BoxFuture<'_, Result<AccountPage, PortalError>> {
        let mut url = h::join(&self.endpoint, "assignment/accounts");
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("max_result", &MAX_RESULT.to_string());
            if let Some(t) = next_token {
                q.append_pair("next_token", t);
            }
        }
        let token = token.clone();
        Box::pin(async move {
            let body = self.send(self.http.get(url), &token).await?;
            decode_accounts(&body)
        })
    }

    /// `GET /assignment/roles?account_id=…&max_result=100[&next_token=…]`.
    pub(super) fn list_account_roles_page(
        &self,
        token: &Secret,
        account_id: &str,
        next_token: Option<&str>,
    ) -> BoxFuture<'_, Result<RolePage, PortalError>> {
        let mut url = h::join(&self.endpoint, "assignment/roles");
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("account_id", account_id);
            q.append_pair("max_result", &MAX_RESULT.to_string());
            if let Some(t) = next_token {
                q.append_pair("next_token", t);
            }
        }
        let token = token.clone();
        Box::pin(async move {
            let body = self.send(self.http.get(url), &token).await?;
            decode_roles(&body)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_decode_with_null_absent_and_empty_next_tokens() {
        let p = decode_accounts(br#"{"nextToken":"abc","accountList":[{"accountId":"111122223333","accountName":"Prod","emailAddress":"a@example.com"}]}"#).unwrap();
        assert_eq!(p.next_token.as_deref(), Some("abc"));
        assert_eq!(p.accounts[0].account_name.as_deref(), Some("Prod"));
        let p = decode_accounts(br#"{"nextToken":null,"accountList":[]}"#).unwrap();
        assert_eq!(p.next_token, None);
        let p = decode_accounts(br#"{"nextToken":""}"#).unwrap();
        assert_eq!((p.next_token, p.accounts.len()), (None, 0));
        let r = decode_roles(br#"{"nextToken":null,"roleList":[{"roleName":"Admin","accountId":"1"},{"accountId":"1"}]}"#).unwrap();
        assert_eq!(r.roles, ["Admin"]);
        assert!(matches!(
            decode_roles(b"<html>"),
            Err(PortalError::Malformed(_))
        ));
        assert!(matches!(
            decode_accounts(br#"{"accountList":[{"accountName":"no id"}]}"#),
            Err(PortalError::Malformed(_))
        ));
    }
}
