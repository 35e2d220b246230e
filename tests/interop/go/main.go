// Interop probe: resolves the profile in AWS_PROFILE through aws-sdk-go-v2's default
// credential chain (config.LoadDefaultConfig) and prints only the access key id
// (`--version`: the SDK's version). On failure
// prints the SDK's own error to stderr and exits 1. Never prints a secret.
//
// Built in GOPATH mode against Debian's packaged modules (golang-github-aws-aws-sdk-go-v2-dev
// under /usr/share/gocode): no module proxy is needed or reachable.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/aws/aws-sdk-go-v2/config"
)

// sdkVersion is aws-sdk-go-v2/config's module version, set by scripts/interop-setup
// (-ldflags -X) from Debian's copy; GOPATH builds carry no module metadata.
var sdkVersion = "unknown"

func main() {
	if len(os.Args) == 2 && os.Args[1] == "--version" {
		fmt.Println(sdkVersion)
		return
	}
	ctx := context.Background()
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	creds, err := cfg.Credentials.Retrieve(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(creds.AccessKeyID)
}
