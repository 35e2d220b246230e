# Interop probe: resolves the profile in AWS_PROFILE through aws-sdk-core's default credential
# chain (the one every client uses: Aws::CredentialProviderChain via a client's config) and
# prints only the access key id (`--version`: the SDK's version). On failure prints the SDK's own error to stderr and exits 1.
# Never prints a secret. Uses Debian's ruby-aws-sdk-core with the system ruby.
require 'aws-sdk-core'

if ARGV == ['--version']
  puts Aws::CORE_GEM_VERSION
  exit 0
end

begin
  client = Aws::STS::Client.new(region: ENV.fetch('AWS_REGION', 'us-east-1'))
  creds = client.config.credentials
  raise Aws::Errors::MissingCredentialsError, 'no credentials' if creds.nil?
  puts creds.credentials.access_key_id
rescue StandardError => e
  warn "#{e.class}: #{e.message}"
  exit 1
end
