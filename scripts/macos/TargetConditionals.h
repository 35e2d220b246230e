/*
 * Stand-in for the macOS SDK's TargetConditionals.h, which ring's C code includes. There is
 * no macOS SDK here: scripts/check-macos only type-checks the Rust code for the macOS
 * targets, and the C objects built with this header are never linked.
 */
#ifndef SSO_AGENT_STUB_TARGET_CONDITIONALS_H
#define SSO_AGENT_STUB_TARGET_CONDITIONALS_H
#define TARGET_OS_MAC 1
#define TARGET_OS_OSX 1
#define TARGET_OS_IPHONE 0
#define TARGET_OS_IOS 0
#define TARGET_OS_TV 0
#define TARGET_OS_WATCH 0
#define TARGET_OS_SIMULATOR 0
#define TARGET_OS_MACCATALYST 0
#define TARGET_OS_VISION 0
#define TARGET_OS_EMBEDDED 0
#endif
