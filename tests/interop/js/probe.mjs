// Interop probe: resolves the profile in AWS_PROFILE through the AWS SDK for JavaScript v3
// default credential chain (fromNodeProviderChain) and prints only the access key id;
// `--version` prints the SDK's version.
// On failure prints the SDK's own error message to stderr and exits 1. Never prints a secret.
import { readFileSync } from "node:fs";
import { fromNodeProviderChain } from "@aws-sdk/credential-providers";

if (process.argv[2] === "--version") {
  const url = new URL("./node_modules/@aws-sdk/credential-providers/package.json", import.meta.url);
  console.log(JSON.parse(readFileSync(url, "utf8")).version);
  process.exit(0);
}

try {
  const creds = await fromNodeProviderChain()();
  console.log(creds.accessKeyId);
} catch (e) {
  console.error(`${e.name}: ${e.message}`);
  process.exit(1);
}
