//! Interop probe: resolves the profile in AWS_PROFILE through aws-config's default credential
//! chain and prints only the access key id; on failure prints the SDK's error (with its
//! sources) to stderr and exits 1. Never prints a secret.

use aws_credential_types::provider::ProvideCredentials;

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    let http = aws_smithy_http_client::Builder::new().build_http();
    let cfg = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(http)
        .load()
        .await;
    let Some(provider) = cfg.credentials_provider() else {
        eprintln!("no credentials provider");
        return std::process::ExitCode::FAILURE;
    };
    match provider.provide_credentials().await {
        Ok(c) => {
            println!("{}", c.access_key_id());
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            let mut text = e.to_string();
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                text.push_str(": ");
                text.push_str(&s.to_string());
                src = s.source();
            }
            eprintln!("{text}");
            std::process::ExitCode::FAILURE
        }
    }
}
