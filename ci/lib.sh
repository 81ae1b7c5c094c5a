# Helpers shared by the ci/ scripts (sourced, not run).
LOG_DIR="${LOG_DIR:-$(mktemp -d -t kammer-ci.XXXXXX)}"
export LOG_DIR
STAGES_PASSED=0
STAGE_STARTED=$SECONDS

stage() {
    printf '\n==> %s\n' "$1"
    STAGE_STARTED=$SECONDS
}

passed() {
    STAGES_PASSED=$((STAGES_PASSED + 1))
    printf '==> %s passed (%ss)\n' "$1" "$((SECONDS - STAGE_STARTED))"
}

die() {
    printf 'ci: %s\n' "$*" >&2
    exit 1
}

# Tests counted over the runners' logs: cargo's "test result" lines and node's "# pass".
count_tests() {
    local cargo node
    cargo=$(grep -hoE 'test result: ok\. [0-9]+ passed' "$LOG_DIR"/cargo-test.log 2>/dev/null \
        | awk '{ s += $4 } END { print s + 0 }')
    node=$(grep -hoE '^# pass [0-9]+' "$LOG_DIR"/browser.log 2>/dev/null | awk '{ s += $3 } END { print s + 0 }')
    echo $((cargo + node))
}

finish() {
    printf '\nAll %s stages passed in %ss; logs in %s\n' "$STAGES_PASSED" "$SECONDS" "$LOG_DIR"
    printf 'tests: %s passed, 0 failed\n' "$(count_tests)"
}
