#!/usr/bin/env bash
# Runs one rollout command for the GitHub Action in action.yml: passes the inputs as arguments (never
# through a shell), writes the job summary, sets the `decisions` output and, for `plan` on a pull
# request, keeps one comment with the plan up to date.
#
# Environment: ROLLOUT_BIN (the built binary), INPUT_COMMAND, INPUT_DIR, INPUT_ARGS, INPUT_COMMENT,
# GITHUB_STEP_SUMMARY, GITHUB_OUTPUT, and for the comment GITHUB_REPOSITORY, GITHUB_EVENT_PATH and
# GH_TOKEN (the gh CLI). ROLLOUT_EXPORT_GROWTHBOOK (the export-growthbook input) is read by rollout
# itself; ROLLOUT_TOKEN_IS_GITHUB_TOKEN is "true" when the token is the job's own GITHUB_TOKEN.
set -uo pipefail

rollout="${ROLLOUT_BIN:?ROLLOUT_BIN is not set}"
command="${INPUT_COMMAND:?the command input is required}"
dir="${INPUT_DIR:-rollouts}"
summary="${GITHUB_STEP_SUMMARY:-/dev/null}"
output="${GITHUB_OUTPUT:-/dev/null}"
marker="<!-- rollout:plan -->"

# args: one argument per line when there are several lines (so an argument may hold spaces), else
# split on whitespace.
args=()
if [[ "${INPUT_ARGS:-}" == *$'\n'* ]]; then
  while IFS= read -r line; do
    [[ -n "$line" ]] && args+=("$line")
  done <<< "$INPUT_ARGS"
else
  read -ra args <<< "${INPUT_ARGS:-}"
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
status=0

# flatten_results is the jq filter that reads rollout's JSON output as one list of objects: an array of
# one object per rollout (reconcile, plan, status), or a single object; JSON Lines from older versions too.
flatten_results='[.[] | if type == "array" then .[] else . end]'

# json_table turns the objects, one per rollout, into a Markdown table for the job summary; the error
# column holds each rollout's error (a failing metrics source, a failed push).
json_table() {
  jq -rs "$flatten_results"' |
    def cell: tostring | gsub("[|\n\r<>]"; " ");
    if length == 0 then "_No rollouts._" else
    (["| rollout | decision | weight | proposal | error |", "|---|---|---|---|---|"] +
     map("| \(.rollout | cell) | \(.decision // .lastDecision // "" | cell) | \(if .from != null then "\(.from) → \(.to)" else "\(.weight // "")" end | cell) | \(.proposal // "" | cell) | \(.error // "" | cell) |"))
    | join("\n") end' "$1"
}

# report_failure adds what the command said on stderr to the job summary when it failed, so that a
# pass that failed as a whole (a bad token, an unreachable remote) does not read as "no rollouts".
# The messages are rollout's own, which never hold a secret; backquotes are dropped to keep the fence.
report_failure() {
  [[ $status -ne 0 && -s "$work/err.txt" ]] || return 0
  { echo; echo "**rollout $command failed (exit $status):**"; echo; echo '```'; tail -n 20 "$work/err.txt" | tr -d '`'; echo '```'; } >> "$summary"
}

# set_decisions writes the objects as one JSON array to the `decisions` output.
set_decisions() {
  local delim="rollout_$RANDOM$RANDOM"
  { echo "decisions<<$delim"; jq -cs "$flatten_results" "$1" 2>/dev/null || echo "[]"; echo "$delim"; } >> "$output"
}

# upsert_comment keeps one comment holding the marker on the pull request that triggered the run.
upsert_comment() {
  local body_file="$1" number id
  number="$(jq -r '.pull_request.number // empty' "${GITHUB_EVENT_PATH:-/dev/null}" 2>/dev/null)"
  if [[ -z "$number" ]]; then
    echo "rollout: not a pull_request event; no plan comment" >&2
    return 0
  fi
  { echo "$marker"; cat "$body_file"; } > "$work/comment.md"
  id="$(gh api --paginate "repos/$GITHUB_REPOSITORY/issues/$number/comments" \
        --jq ".[] | select(.body | contains(\"$marker\")) | .id" | head -n1)"
  if [[ -n "$id" ]]; then
    gh api --method PATCH "repos/$GITHUB_REPOSITORY/issues/comments/$id" -F "body=@$work/comment.md" > /dev/null
  else
    gh api --method POST "repos/$GITHUB_REPOSITORY/issues/$number/comments" -F "body=@$work/comment.md" > /dev/null
  fi
}

# chain_warning says, for a command that commits to the default branch, that a push with the job's own
# GITHUB_TOKEN starts no workflow: an export or deploy workflow chained on the push does not run after a
# rollback, unless this job writes the export itself (the export-growthbook input).
chain_warning() {
  case "$command" in reconcile|rollback|pause|resume) ;; *) return 0 ;; esac
  [[ "${ROLLOUT_TOKEN_IS_GITHUB_TOKEN:-}" == "true" && -z "${ROLLOUT_EXPORT_GROWTHBOOK:-}" ]] || return 0
  local msg="this job pushes with GITHUB_TOKEN, whose commits start no workflow: a workflow chained on the push (rollout-export.yml, a deploy) will not run after a rollback, so applications keep the canary. Set the export-growthbook input (the commit then carries the export), or pass a GitHub App token (docs/github.md)."
  echo "::warning title=rollout: rollbacks may not reach your applications::$msg"
  { echo; echo "> **Warning:** $msg"; } >> "$summary"
}
chain_warning

case "$command" in
  reconcile|status)
    "$rollout" "$command" --dir "$dir" -o json "${args[@]}" > "$work/out.json" 2> "$work/err.txt" || status=$?
    cat "$work/err.txt" >&2
    { echo "### rollout $command"; echo; json_table "$work/out.json"; } >> "$summary"
    report_failure
    set_decisions "$work/out.json"
    ;;
  plan)
    "$rollout" plan --dir "$dir" -o json "${args[@]}" > "$work/out.json" 2> "$work/err.txt" || status=$?
    cat "$work/err.txt" >&2
    "$rollout" plan --dir "$dir" --format markdown "${args[@]}" > "$work/plan.md" || status=$?
    cat "$work/plan.md" >> "$summary"
    report_failure
    set_decisions "$work/out.json"
    if [[ "${INPUT_COMMENT:-true}" == "true" ]]; then
      upsert_comment "$work/plan.md" || status=1
    fi
    ;;
  evaluate)
    "$rollout" evaluate --dir "$dir" -o json "${args[@]}" > "$work/out.json" 2> "$work/err.txt" || status=$?
    cat "$work/err.txt" >&2
    { echo "### rollout evaluate"; echo; echo '```json'; jq . "$work/out.json"; echo '```'; } >> "$summary"
    report_failure
    set_decisions "$work/out.json"
    ;;
  install)
    # Only the binary (action/install.sh put it in place): a later step runs it from the bin output.
    "$rollout" version || status=$?
    { echo "### rollout installed"; echo; echo '```'; "$rollout" version 2>&1 | tr -d '`'; echo '```'; } >> "$summary"
    set_decisions /dev/null
    ;;
  validate)
    # --format github prints ::error annotations, which the runner turns into annotations on the lines.
    "$rollout" validate --dir "$dir" --format github "${args[@]}" || status=$?
    if [[ $status -eq 0 ]]; then echo "### rollout validate: every spec is valid" >> "$summary"; else echo "### rollout validate: problems found (see the annotations)" >> "$summary"; fi
    set_decisions /dev/null
    ;;
  *)
    # rollback, pause, resume, history, …: plain output, shown in the summary.
    "$rollout" "$command" --dir "$dir" "${args[@]}" > "$work/out.txt" 2>&1 || status=$?
    cat "$work/out.txt"
    { echo "### rollout $command"; echo; echo '```'; cat "$work/out.txt"; echo '```'; } >> "$summary"
    set_decisions /dev/null
    ;;
esac
exit "$status"
