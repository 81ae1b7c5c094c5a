# shellcheck shell=bash
# Running the image under qemu with a swtpm vTPM (sourced by ci/image-boot). TCG only: KVM is
# not available on the CI machines. A machine is a directory holding its disk, its UEFI
# variables and its TPM state; each boot appends the serial console to MACHINE/console.log.

OVMF_CODE=/usr/share/OVMF/OVMF_CODE_4M.fd
OVMF_VARS=/usr/share/OVMF/OVMF_VARS_4M.fd

# machine_new DIR DISK: a new machine with a copy of DISK, empty UEFI variables and a new TPM.
machine_new() {
    local dir=$1 disk=$2
    mkdir -p "$dir/tpm"
    cp --sparse=always "$disk" "$dir/disk.img"
    cp "$OVMF_VARS" "$dir/vars.fd"
}

# machine_clone SRC DST: the same machine (disk, variables, TPM state) as SRC, powered off.
machine_clone() {
    local src=$1 dst=$2
    mkdir -p "$dst"
    cp -a --sparse=always "$src/disk.img" "$src/vars.fd" "$src/tpm" "$dst/"
}

# boot_start DIR PORT: boots the machine in the background; HTTPS of the guest on 127.0.0.1:PORT.
boot_start() {
    local dir=$1 port=$2
    rm -f "$dir/tpm/sock" "$dir/qmp.sock"
    : >"$dir/boot.log"
    swtpm socket --tpm2 --tpmstate dir="$dir/tpm" --ctrl type=unixio,path="$dir/tpm/sock" \
        --log file="$dir/tpm/swtpm.log" --pid file="$dir/tpm/pid" --daemon ||
        fail "swtpm did not start"
    for _ in $(seq 50); do [[ -S $dir/tpm/sock ]] && break; sleep 0.1; done
    qemu-system-x86_64 -machine q35 -accel tcg -cpu max -smp 2 -m 2048 \
        -drive if=pflash,format=raw,unit=0,readonly=on,file="$OVMF_CODE" \
        -drive if=pflash,format=raw,unit=1,file="$dir/vars.fd" \
        -drive if=virtio,format=raw,file="$dir/disk.img",cache=unsafe \
        -chardev socket,id=chrtpm,path="$dir/tpm/sock" \
        -tpmdev emulator,id=tpm0,chardev=chrtpm -device tpm-tis,tpmdev=tpm0 \
        -netdev user,id=net0,restrict=on,hostfwd=tcp:127.0.0.1:"$port"-:443 \
        -device virtio-net-pci,netdev=net0 \
        -qmp unix:"$dir/qmp.sock",server=on,wait=off \
        -display none -serial file:"$dir/boot.log" -monitor none -no-reboot \
        >"$dir/qemu.log" 2>&1 &
    echo $! >"$dir/qemu.pid"
    BOOT_STARTED=$SECONDS
}

qemu_running() {
    kill -0 "$(cat "$1/qemu.pid")" 2>/dev/null
}

# The last console line worth showing as progress.
progress_line() {
    tr -d '\r' <"$1/boot.log" 2>/dev/null | grep -a -E 'Reached target|Started|Finished|kammer|Failed|verity|EFI stub' |
        tail -n 1 | sed 's/\x1b\[[0-9;]*m//g' | cut -c1-140
}

healthz() {
    curl -sk --max-time 10 "https://127.0.0.1:$1/healthz" 2>/dev/null
}

# wait_healthy DIR PORT DEADLINE: until /healthz answers over TLS; fails with the console's tail
# when the machine stops or DEADLINE seconds pass.
wait_healthy() {
    local dir=$1 port=$2 deadline=$3 last=0
    while true; do
        if healthz "$port" | grep -q .; then
            printf '    healthy after %ss: /healthz = %s\n' "$((SECONDS - BOOT_STARTED))" "$(healthz "$port" | head -c 200)"
            return 0
        fi
        qemu_running "$dir" || fail_with_console "$dir" "the machine stopped before /healthz answered"
        ((SECONDS - BOOT_STARTED < deadline)) || fail_with_console "$dir" "/healthz did not answer within ${deadline}s"
        if ((SECONDS - last >= 20)); then
            printf '    %4ss  %s\n' "$((SECONDS - BOOT_STARTED))" "$(progress_line "$dir")"
            last=$SECONDS
        fi
        sleep 5
    done
}

# wait_console DIR PATTERN DEADLINE: until the console shows PATTERN (extended regex).
wait_console() {
    local dir=$1 pattern=$2 deadline=$3 last=0
    while ! tr -d '\r' <"$dir/boot.log" | grep -a -q -E "$pattern"; do
        ((SECONDS - BOOT_STARTED < deadline)) || fail_with_console "$dir" "the console did not show /$pattern/ within ${deadline}s"
        qemu_running "$dir" || { tr -d '\r' <"$dir/boot.log" | grep -a -q -E "$pattern" && return 0; fail_with_console "$dir" "the machine stopped before the console showed /$pattern/"; }
        if ((SECONDS - last >= 20)); then
            printf '    %4ss  %s\n' "$((SECONDS - BOOT_STARTED))" "$(progress_line "$dir")"
            last=$SECONDS
        fi
        sleep 5
    done
    printf '    after %ss the console shows: %s\n' "$((SECONDS - BOOT_STARTED))" \
        "$(tr -d '\r' <"$dir/boot.log" | grep -a -E "$pattern" | head -n 1 | sed 's/\x1b\[[0-9;]*m//g' | cut -c1-160)"
}

# Shuts the machine down cleanly or, after 180 s, kills it. The image has no logind to act on
# the ACPI power button; Ctrl-Alt-Del makes systemd reboot, which -no-reboot turns into qemu's
# exit once the system is down.
boot_stop() {
    local dir=$1
    if qemu_running "$dir"; then
        python3 - "$dir/qmp.sock" <<'EOF' || true
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
f = s.makefile("rw")
f.readline()
keys = [{"type": "qcode", "data": key} for key in ("ctrl", "alt", "delete")]
for command in ({"execute": "qmp_capabilities"}, {"execute": "send-key", "arguments": {"keys": keys}}):
    f.write(json.dumps(command) + "\n"); f.flush(); f.readline()
EOF
        for _ in $(seq 180); do qemu_running "$dir" || break; sleep 1; done
        qemu_running "$dir" && kill "$(cat "$dir/qemu.pid")" 2>/dev/null
    fi
    wait "$(cat "$dir/qemu.pid")" 2>/dev/null || true
    kill "$(cat "$dir/tpm/pid" 2>/dev/null)" 2>/dev/null || true
    cat "$dir/boot.log" >>"$dir/console.log"
}

fail_with_console() {
    local dir=$1
    shift
    printf '\n--- last 60 console lines of %s ---\n' "$dir" >&2
    tr -d '\r' <"$dir/boot.log" | sed 's/\x1b\[[0-9;]*m//g' | tail -n 60 >&2
    boot_stop "$dir"
    fail "$*"
}

# The SHA-256 of the TLS server's public key (SubjectPublicKeyInfo).
server_key_fingerprint() {
    openssl s_client -connect "127.0.0.1:$1" </dev/null 2>/dev/null | openssl x509 -noout -pubkey |
        openssl pkey -pubin -outform DER | sha256sum | cut -d' ' -f1
}
