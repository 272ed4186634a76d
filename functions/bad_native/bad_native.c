/* bad_native: a native function that breaks the ABI on purpose, to exercise
 * the node's load-time checks. It exports the ABI version and
 * edgeless_native_init but none of the handlers. It is written without the
 * SDK, which would always provide them. */
#include "edgeless_native.h"

EDGELESS_NATIVE_EXPORT const uint32_t edgeless_native_abi_version = EDGELESS_NATIVE_ABI_VERSION;

int32_t edgeless_native_init(const edgeless_native_host *host, void *ctx) {
	(void)host;
	(void)ctx;
	return 0;
}
