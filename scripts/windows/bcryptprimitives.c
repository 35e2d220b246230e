/*
 * ProcessPrng for Wine 8.0, which has no bcryptprimitives.dll: Rust's std (1.78 and later)
 * imports ProcessPrng from it for every random number, so without this DLL every Windows
 * program built by Rust exits at once (status 53) under Wine. Only for the Wine prefix
 * scripts/test-windows prepares; real Windows has its own DLL.
 *
 * Built by scripts/test-windows with:
 *   x86_64-w64-mingw32-gcc -shared -O2 -o bcryptprimitives.dll bcryptprimitives.c \
 *       bcryptprimitives.def -ladvapi32
 */
#include <windows.h>
#include <ntsecapi.h> /* RtlGenRandom = SystemFunction036 in advapi32 */

/* Fills data[0..len) with random bytes; RtlGenRandom takes a ULONG length, hence chunks. */
BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    while (len > 0) {
        ULONG n = len > 0x40000000 ? 0x40000000 : (ULONG)len;
        if (!RtlGenRandom(data, n))
            return FALSE;
        data += n;
        len -= n;
    }
    return TRUE;
}
