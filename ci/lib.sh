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

finish() {
    printf '\nAll stages passed in %ss; logs in %s\n' "$SECONDS" "$LOG_DIR"
    printf 'suite: %s passed, 0 failed\n' "$STAGES_PASSED"
}
