# shellcheck shell=bash
# The stages of image/build (sourced). Each function works on paths it is given and on the
# variables image/build sets: REPO, IMAGE_DIR, WORK, OUT, CACHE, LOCK, EPOCH, VERSION, PCR_KEY.
# shellcheck disable=SC2153 # VERSION and the others above are image/build's

STUB=/usr/lib/systemd/boot/efi/linuxx64.efi.stub
MEASURE=/usr/lib/systemd/systemd-measure
DEBIAN_MIRROR=${KAMMER_DEBIAN_MIRROR:-http://deb.debian.org/debian}
DEBIAN_SECURITY=${KAMMER_DEBIAN_SECURITY:-http://deb.debian.org/debian-security}
SUITE=bookworm

# Partition sizes in MiB. Slots are fixed so that a later release fits into slot B.
ESP_MIB=128
ROOT_SLOT_MIB=512
VERITY_SLOT_MIB=32
VAR_MIB=1024

# GPT partition types (the Discoverable Partitions Specification, x86-64).
TYPE_ESP=C12A7328-F81F-11D2-BA4B-00A0C93EC93B
TYPE_ROOT=4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709
TYPE_ROOT_VERITY=2C7357ED-EBD2-46D9-AEC1-23D437EC2BF5
TYPE_VAR=4D21B016-B534-45C2-A9FB-5C16E091FD2D

STAGE_NAME=""
STAGE_START=0

stage() {
    STAGE_NAME=$1
    STAGE_START=$SECONDS
    printf '==> %s\n' "$1"
}

done_stage() {
    printf '    %s: done in %ss\n' "$STAGE_NAME" "$((SECONDS - STAGE_START))"
}

note() {
    printf '    %s\n' "$*"
}

fail() {
    printf 'image/build: %s%s\n' "${STAGE_NAME:+[$STAGE_NAME] }" "$*" >&2
    exit 1
}

human_size() {
    du -h --apparent-size "$1" | cut -f1
}

# Every host command the build runs, with the Debian package that provides it.
require_commands() {
    local -A provider=(
        [mmdebstrap]=mmdebstrap [mkfs.erofs]=erofs-utils [veritysetup]=cryptsetup-bin
        [objcopy]=binutils [objdump]=binutils [sfdisk]=fdisk [mkfs.vfat]=dosfstools
        [mcopy]=mtools [mmd]=mtools [apt-ftparchive]=apt-utils [swtpm]=swtpm
        [openssl]=openssl [python3]=python3 [cargo]="rustup (see rust-toolchain.toml)"
    )
    local missing=() command
    for command in "${!provider[@]}"; do
        command -v "$command" >/dev/null || missing+=("$command (${provider[$command]})")
    done
    ((${#missing[@]} == 0)) || fail "missing commands: ${missing[*]}; install with apt-get install ..."
}

list_sha256() {
    sha256sum "$IMAGE_DIR/packages.list" | cut -d' ' -f1
}

# The package names of packages.list (comments and blank lines dropped).
package_names() {
    sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$IMAGE_DIR/packages.list" | tr -d ' \t'
}

lock_matches_list() {
    grep -qx "# packages.list sha256: $(list_sha256)" "$LOCK"
}

# Lock entries: "name version architecture sha256 file", one per package.
lock_entries() {
    grep -v '^#' "$LOCK"
}

# The release binary, built so that its bytes do not depend on where the checkout or the cargo
# registry live.
build_kammer() {
    local out=$1 target=${KAMMER_IMAGE_CARGO_TARGET:-$REPO/target/image-cargo}
    local cargo_home=${CARGO_HOME:-$HOME/.cargo}
    note "cargo build --release --locked -p kammer (target dir $target)"
    (
        cd "$REPO"
        # Later mappings win: the target directory (which may lie inside the checkout) last.
        RUSTFLAGS="--remap-path-prefix=$REPO=/build/kammer --remap-path-prefix=$cargo_home=/build/cargo --remap-path-prefix=$target=/build/target -C strip=debuginfo -C link-arg=-Wl,--build-id=sha1" \
            CARGO_TARGET_DIR="$target" cargo build --release --locked -p kammer --quiet
    ) || fail "cargo build failed"
    install -m 0755 "$target/release/kammer" "$out"
    if strings -a "$out" | grep -q -F -e "$REPO" -e "$target"; then
        fail "the release binary still names the build directory $REPO"
    fi
    note "kammer $(sha256sum "$out" | cut -d' ' -f1)"
}

# Resolves packages.list against the Debian mirror with the same mmdebstrap call the build
# makes, keeps every downloaded .deb in the cache and writes packages.lock.
update_lock() {
    local resolve=$WORK/resolve debs=$WORK/resolve-debs
    mkdir -p "$debs"
    mmdebstrap --variant=minbase --mode=root --format=directory --architectures=amd64 \
        --include="$(package_names | paste -sd,)" --skip=essential/unlink \
        --customize-hook="chroot \"\$1\" dpkg-query -W -f='\${Package} \${Version} \${Architecture}\n' >'$WORK/resolved.txt'" \
        --customize-hook="sync-out /var/cache/apt/archives '$debs'" \
        "$SUITE" "$resolve" \
        "deb $DEBIAN_MIRROR $SUITE main" "deb $DEBIAN_MIRROR $SUITE-updates main" \
        "deb $DEBIAN_SECURITY $SUITE-security main" >"$WORK/resolve.log" 2>&1 ||
        fail "mmdebstrap could not resolve the package set: $(tail -n 20 "$WORK/resolve.log")"
    rm -rf "$resolve"
    {
        echo "# The appliance image's package set, resolved by 'image/build --update-lock'; do not edit."
        echo "# packages.list sha256: $(list_sha256)"
        echo "# name version architecture sha256 file"
        local name version arch file
        while read -r name version arch; do
            file="${name}_${version//:/%3a}_${arch}.deb"
            [[ -f $debs/$file ]] || fail "apt kept no $file for $name $version"
            cp "$debs/$file" "$CACHE/$file"
            echo "$name $version $arch $(sha256sum "$CACHE/$file" | cut -d' ' -f1) $file"
        done < <(sort "$WORK/resolved.txt")
    } >"$LOCK.new"
    mv "$LOCK.new" "$LOCK"
    note "$(lock_entries | wc -l) packages pinned in image/packages.lock"
}

# Checks every locked .deb in the cache (fetching what is missing from the host's apt sources),
# then makes a local repository of exactly those files: the build never sees another version.
prepare_repository() {
    local repo=$1 name version arch sha file missing=()
    mkdir -p "$repo"
    while read -r name version arch sha file; do
        [[ -f $CACHE/$file ]] || missing+=("$name=$version")
    done < <(lock_entries)
    if ((${#missing[@]})); then
        note "fetching ${#missing[@]} .deb files into $CACHE with the host's apt sources"
        apt-get update -q >"$WORK/apt-update.log" 2>&1 || fail "apt-get update failed: $(tail -n 5 "$WORK/apt-update.log")"
        if ! (cd "$CACHE" && apt-get download -q "${missing[@]}" >"$WORK/apt-download.log" 2>&1); then
            for entry in "${missing[@]}"; do
                (cd "$CACHE" && apt-get download -q "$entry" >/dev/null 2>&1) ||
                    fail "${entry/=/ } is neither in the cache $CACHE nor on the mirror; restore the cache or run --update-lock"
            done
        fi
    fi
    while read -r name version arch sha file; do
        [[ $(sha256sum "$CACHE/$file" | cut -d' ' -f1) == "$sha" ]] ||
            fail "$CACHE/$file does not have the sha256 the lock records ($sha)"
        ln -f "$CACHE/$file" "$repo/$file" 2>/dev/null || cp "$CACHE/$file" "$repo/$file"
    done < <(lock_entries)
    (cd "$repo" && apt-ftparchive packages . >Packages 2>/dev/null && apt-ftparchive release . >Release) ||
        fail "apt-ftparchive could not index $repo"
    note "$(lock_entries | wc -l) packages verified against the lock (${#missing[@]} fetched)"
}

build_rootfs() {
    local repo=$1 root=$2
    rm -rf "$root"
    # apt is part of minbase, but from a repository without a suite mmdebstrap does not add it
    # by itself; the customize hook needs it to remove the build-only packages, then removes it.
    mmdebstrap --variant=minbase --mode=root --format=directory --architectures=amd64 \
        --include="apt,$(package_names | paste -sd,)" \
        --aptopt='Acquire::Languages "none"' \
        --customize-hook="'$IMAGE_DIR/lib/customize' \"\$1\" '$WORK' '$VERSION' '$EPOCH' '$SITE_CONFIG'" \
        "" "$root" "deb [trusted=yes] copy://$repo ./" >"$WORK/mmdebstrap.log" 2>&1 ||
        fail "mmdebstrap failed: $(tail -n 30 "$WORK/mmdebstrap.log")"
    "$IMAGE_DIR/lib/finalize" "$root" || fail "could not finalise the tree"
    # Everything that was installed must be what the lock pinned.
    local unexpected
    unexpected=$(comm -23 <(sort "$WORK/installed.txt") <(lock_entries | awk '{ print $1, $2, $3 }' | sort))
    [[ -z $unexpected ]] || fail "installed packages that are not in the lock: $unexpected"
    unexpected=$(comm -13 <(sort "$WORK/installed.txt") <(lock_entries | awk '{ print $1, $2, $3 }' | sort))
    [[ -z $unexpected ]] || fail "the lock pins packages the build did not install (run --update-lock): $unexpected"
    note "root file system: $(du -sh "$root" | cut -f1), kernel $(cat "$WORK/kernel-version")"
}

# A name for the tree's shape (paths, modes, owners, sizes), from which the erofs UUID is made.
tree_digest() {
    (cd "$1" && find . -printf '%P %m %U %G %s %l\n' | sort | sha256sum | cut -d' ' -f1)
}

hex_to_uuid() {
    local h=$1
    printf '%s-%s-%s-%s-%s' "${h:0:8}" "${h:8:4}" "${h:12:4}" "${h:16:4}" "${h:20:12}"
}

# A fixed UUID for NAME, derived from SEED.
derive_uuid() {
    hex_to_uuid "$(printf 'kammer %s %s' "$1" "$2" | sha256sum | cut -c1-32)"
}

kernel_cmdline() {
    local roothash=$1 root_partuuid=$2 verity_partuuid=$3
    local args=(
        "root=/dev/mapper/root" "rootfstype=erofs" "ro"
        "roothash=$roothash"
        "systemd.verity_root_data=/dev/disk/by-partuuid/$root_partuuid"
        "systemd.verity_root_hash=/dev/disk/by-partuuid/$verity_partuuid"
        # Debug shells and interactive first-boot questions are off; a failing initrd reboots.
        "rd.shell=0" "rd.emergency=reboot" "systemd.firstboot=off"
        # Kernel hardening: user space can neither change nor read the kernel's memory, signed
        # modules only. systemd does not go looking for partitions (the ESP) on its own.
        "lockdown=confidentiality" "module.sig_enforce=1" "init_on_alloc=1" "slab_nomerge"
        "systemd.gpt_auto=0"
        "console=tty0" "console=ttyS0,115200"
    )
    printf '%s' "${args[*]}"
}

# A free TCP port on loopback, and the one after it.
free_port_pair() {
    python3 - <<'EOF'
import socket
while True:
    a = socket.socket(); a.bind(("127.0.0.1", 0)); port = a.getsockname()[1]
    b = socket.socket()
    try:
        b.bind(("127.0.0.1", port + 1)); break
    except OSError:
        pass
    finally:
        a.close(); b.close()
print(port)
EOF
}

# Signs the expected PCR 11 values of the UKI's sections (boot phases: the encrypted /var is
# opened after the initrd, the appliance starts when the system is ready) with PCR_KEY.
# systemd-measure computes the policy digests with a TPM: a throw-away swtpm on loopback.
sign_pcr_policy() {
    local dir=$1 out=$2 port
    port=$(free_port_pair)
    mkdir -p "$dir/swtpm"
    swtpm socket --tpmstate dir="$dir/swtpm" --tpm2 --daemon --pid file="$dir/swtpm/pid" \
        --server type=tcp,port="$port",bindaddr=127.0.0.1 \
        --ctrl type=tcp,port=$((port + 1)),bindaddr=127.0.0.1 \
        --flags not-need-init,startup-clear || fail "swtpm did not start"
    local status=0
    TSS2_LOG=all+NONE "$MEASURE" sign \
        --linux="$dir/vmlinuz" --osrel="$dir/os-release" --cmdline="$dir/cmdline" \
        --initrd="$dir/initrd" --pcrpkey="$dir/pcr-public-key.pem" --bank=sha256 \
        --private-key="$PCR_KEY" --public-key="$dir/pcr-public-key.pem" \
        --phase=enter-initrd:leave-initrd --phase=enter-initrd:leave-initrd:sysinit:ready \
        --tpm2-device="swtpm:host=127.0.0.1,port=$port" >"$out" 2>"$dir/measure.log" || status=$?
    kill "$(cat "$dir/swtpm/pid")" 2>/dev/null || true
    ((status == 0)) || fail "systemd-measure sign failed: $(cat "$dir/measure.log")"
}

# The UKI: systemd-stub with the kernel, initrd, command line, os-release, the PCR public key
# and the signed policy as PE sections, each page-aligned after the stub's own.
build_uki() {
    local dir=$1 out=$2 cmdline=$3
    printf '%s' "$cmdline" >"$dir/cmdline"
    note "command line: $cmdline"
    sign_pcr_policy "$dir" "$dir/pcrsig.json"
    assemble_uki "$dir" "$dir/pcrsig.json" "$out"
}

# Puts the UKI together from the files in DIR (also used by the tamper test with another
# command line and the original signature).
assemble_uki() {
    local dir=$1 pcrsig=$2 out=$3
    local sections=(.osrel:os-release .cmdline:cmdline .pcrpkey:pcr-public-key.pem .pcrsig:"$pcrsig" .initrd:initrd .linux:vmlinuz)
    local end vma args=() entry name file
    local index size address _
    end=0
    while read -r index _ size address _; do
        [[ $index =~ ^[0-9]+$ ]] || continue
        ((16#$address + 16#$size > end)) && end=$((16#$address + 16#$size))
    done < <(objdump -h "$STUB")
    ((end > 0)) || fail "objdump found no sections in $STUB"
    vma=$(((end + 0xffff) & ~0xffff))
    for entry in "${sections[@]}"; do
        name=${entry%%:*}
        file=${entry#*:}
        [[ $file == /* ]] || file=$dir/$file
        [[ -s $file ]] || fail "UKI section $name: $file is missing or empty"
        args+=(--add-section "$name=$file" --change-section-vma "$name=$(printf '0x%x' "$vma")")
        vma=$(((vma + $(stat -c %s "$file") + 0xfff) & ~0xfff))
    done
    objcopy "${args[@]}" "$STUB" "$out" || fail "objcopy could not assemble the UKI"
    python3 "$IMAGE_DIR/lib/pe-normalize" "$out" "$EPOCH" || fail "could not normalise the UKI's PE header"
}

# A FAT32 EFI system partition with the UKI at the removable-media path and a README.
build_esp() {
    local uki=$1 esp=$2
    rm -f "$esp"
    mkfs.vfat --invariant -F 32 -i 4b414d4d -n KAMMER-ESP -C "$esp" $((ESP_MIB * 1024)) >/dev/null ||
        fail "mkfs.vfat failed"
    local stamp=$WORK/esp-files
    mkdir -p "$stamp"
    cp "$uki" "$stamp/BOOTX64.EFI"
    cp "$IMAGE_DIR/esp/README.txt" "$stamp/README.txt"
    touch -d "@$EPOCH" "$stamp"/*
    MTOOLS_SKIP_CHECK=1 mmd -i "$esp" ::/EFI ::/EFI/BOOT || fail "mmd failed"
    MTOOLS_SKIP_CHECK=1 mcopy -m -i "$esp" "$stamp/BOOTX64.EFI" ::/EFI/BOOT/BOOTX64.EFI || fail "mcopy failed"
    MTOOLS_SKIP_CHECK=1 mcopy -m -i "$esp" "$stamp/README.txt" ::/README.txt || fail "mcopy failed"
}

# The GPT disk: ESP, root A + verity A (this build), root B + verity B (empty, for the next
# release), /var (formatted and encrypted on first boot). Every identifier is fixed.
build_disk() {
    local disk=$1 root_partuuid=$2 verity_partuuid=$3 mib=2048 # sectors per MiB
    local root_size verity_size
    root_size=$(stat -c %s "$OUT/root.erofs")
    verity_size=$(stat -c %s "$OUT/root.verity")
    ((root_size <= ROOT_SLOT_MIB * 1048576)) || fail "the root image ($root_size bytes) is larger than its ${ROOT_SLOT_MIB} MiB slot"
    ((verity_size <= VERITY_SLOT_MIB * 1048576)) || fail "the verity tree is larger than its ${VERITY_SLOT_MIB} MiB slot"
    local start=$mib sizes=("$ESP_MIB" "$ROOT_SLOT_MIB" "$VERITY_SLOT_MIB" "$ROOT_SLOT_MIB" "$VERITY_SLOT_MIB" "$VAR_MIB")
    local total=1 s
    for s in "${sizes[@]}"; do total=$((total + s)); done
    total=$((total + 1))
    rm -f "$disk"
    truncate -s "${total}M" "$disk"
    local starts=() counts=() i
    for i in "${!sizes[@]}"; do
        starts[i]=$start
        counts[i]=$((sizes[i] * mib))
        start=$((start + counts[i]))
    done
    local seed
    seed=$(cat "$OUT/roothash")
    sfdisk --quiet --no-reread --no-tell-kernel "$disk" >"$WORK/sfdisk.log" 2>&1 <<EOF || fail "sfdisk failed: $(cat "$WORK/sfdisk.log")"
label: gpt
label-id: $(derive_uuid disk "$seed")
unit: sectors
first-lba: 2048
sector-size: 512

start=${starts[0]}, size=${counts[0]}, type=$TYPE_ESP, uuid=$(derive_uuid esp kammer), name="esp"
start=${starts[1]}, size=${counts[1]}, type=$TYPE_ROOT, uuid=$root_partuuid, name="kammer_$VERSION"
start=${starts[2]}, size=${counts[2]}, type=$TYPE_ROOT_VERITY, uuid=$verity_partuuid, name="kammer_${VERSION}_verity"
start=${starts[3]}, size=${counts[3]}, type=$TYPE_ROOT, uuid=$(derive_uuid root-b kammer), name="_empty"
start=${starts[4]}, size=${counts[4]}, type=$TYPE_ROOT_VERITY, uuid=$(derive_uuid verity-b kammer), name="_empty"
start=${starts[5]}, size=${counts[5]}, type=$TYPE_VAR, uuid=$(derive_uuid var kammer), name="kammer-var"
EOF
    dd if="$OUT/esp.img" of="$disk" bs=512 seek="${starts[0]}" conv=notrunc,sparse status=none
    dd if="$OUT/root.erofs" of="$disk" bs=512 seek="${starts[1]}" conv=notrunc,sparse status=none
    dd if="$OUT/root.verity" of="$disk" bs=512 seek="${starts[2]}" conv=notrunc,sparse status=none
    printf '%s\n' "${starts[@]}" >"$WORK/partition-starts"
}

write_manifest() {
    local out=$1
    {
        echo "# Kammer OS image manifest"
        echo "version: $VERSION"
        local dirty=""
        [[ -n $(git -C "$REPO" status --porcelain --untracked-files=no 2>/dev/null) ]] && dirty=" (with uncommitted changes)"
        echo "commit: $(git -C "$REPO" rev-parse HEAD 2>/dev/null || echo unknown)$dirty"
        echo "site_config: ${SITE_CONFIG:-none, the default of image/root}"
        echo "pcr_signing_key: $PCR_KEY_KIND"
        echo "source_date_epoch: $EPOCH"
        echo "roothash: $(cat "$OUT/roothash")"
        echo "kernel: $(cat "$WORK/kernel-version")"
        echo "kernel_cmdline: $(cat "$WORK/cmdline")"
        echo "pcr_public_key_sha256: $(openssl pkey -pubin -in "$WORK/pcr-public-key.pem" -outform DER 2>/dev/null | sha256sum | cut -d' ' -f1)"
        echo "kammer_sha256: $(sha256sum "$WORK/kammer" | cut -d' ' -f1)"
        echo "rustc: $(rustc --version 2>/dev/null)"
        echo
        echo "# Host tools whose output is in the image (the build host is bookworm as well)."
        dpkg-query -W -f='host ${Package} ${Version}\n' systemd-boot-efi erofs-utils cryptsetup-bin binutils \
            dosfstools mtools fdisk mmdebstrap systemd gcc libc6-dev 2>/dev/null
        echo
        echo "# Packages: name version architecture sha256-of-deb (removed after the initrd was built: marked)"
        local name version arch sha file mark
        while read -r name version arch sha file; do
            mark=""
            grep -qx "$name" "$WORK/removed.txt" && mark=" removed"
            echo "package $name $version $arch $sha$mark"
        done < <(lock_entries)
    } >"$out"
}
