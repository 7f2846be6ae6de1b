#!/usr/bin/env bash
# The kernel tests on linux-arm64 under emulation: publishes tests/R1Sharp.KernelRunner self-contained for linux-arm64
# (the runtime pack comes from NuGet) and runs it under Debian's qemu-user-static with the arm64 C libraries of
# Debian's cross packages. qemu's default CPU has the dot-product extension, so both 128-bit levels run: V128 (AdvSimd,
# widening multiplies) and V128Dot (Dp's sdot); with QEMU_CPU=cortex-a72 only V128 (no dotprod) does.
# Emulation says nothing about speed. Arguments are passed to the runner (substrings of Class.Method to select).
#
# Needs: apt-get install qemu-user-static libc6-arm64-cross libstdc++6-arm64-cross libgcc-s1-arm64-cross
set -euo pipefail
cd "$(dirname "$0")/.."
qemu=$(command -v qemu-aarch64-static || command -v qemu-aarch64 || true)
sysroot=/usr/aarch64-linux-gnu
if [[ -z "$qemu" || ! -e "$sysroot/lib/ld-linux-aarch64.so.1" ]]; then
  echo "test-arm64: needs qemu-user-static and the arm64 cross libraries:" >&2
  echo "  apt-get install qemu-user-static libc6-arm64-cross libstdc++6-arm64-cross libgcc-s1-arm64-cross" >&2
  exit 1
fi
out=artifacts/kernel-runner-linux-arm64
dotnet publish tests/R1Sharp.KernelRunner -c Release -r linux-arm64 --self-contained -o "$out" -v quiet -nologo
# the JIT is emulated: tiered compilation's rejits only cost time here
export DOTNET_TieredCompilation=0
# W^X maps code pages twice (written through one mapping, run through the other): qemu-user does not see writes
# through the other mapping, so code written where freed code was (reflection's invoke stubs) ran as the old code's
# translation: a NullReferenceException inside an invoke stub, depending on which tests ran before
export DOTNET_EnableWriteXorExecute=0
"$qemu" -L "$sysroot" "$out/R1Sharp.KernelRunner" "$@"
