#!/usr/bin/env bash
# Runs one rollout command for the GitHub Action in action.yml: passes the inputs as arguments (never
# through a shell), writes the job summary, sets the `decisions` output and, for `plan` on a pull
# request, keeps one comment with the plan up to date.
#
# Environment: ROLLOUT_BIN (the built binary), INPUT_COMMAND, INPUT_DIR, INPUT_ARGS, INPUT_COMMENT,
# INPUT_ARTIFACT and RUNNER_TEMP (for report; ROLLOUT_REPORT_DIR overrides where the page goes),
# GITHUB_STEP_SUMMARY, GITHUB_OUTPUT, and for the comment GITHUB_REPOSITORY, GITHUB_EVENT_PATH,
# GITHUB_API_URL, GITHUB_SERVER_URL, GITHUB_RUN_ID and GH_TOKEN (or GITHUB_TOKEN); ROLLOUT_COMMENT_AUTHOR
# names the login the plan comment is written as when the token cannot tell (see own_comment_filter).
# ROLLOUT_EXPORT_GROWTHBOOK (the export-growthbook input) is read by rollout itself;
# ROLLOUT_TOKEN_IS_GITHUB_TOKEN is "true" when the token is the job's own GITHUB_TOKEN.
set -uo pipefail

rollout="${ROLLOUT_BIN:?ROLLOUT_BIN is not set}"
command="${INPUT_COMMAND:?the command input is required}"
dir="${INPUT_DIR:-rollouts}"
summary="${GITHUB_STEP_SUMMARY:-/dev/null}"
output="${GITHUB_OUTPUT:-/dev/null}"
marker="<!-- rollout:plan -->"
# default_marker marks the plan `/rollout plan` asks for: an issue_comment job's checkout is the default
# branch, so that plan is the default branch's, never the pull request's, and must not replace the
# pull request's own plan (the `plan` workflow's comment, which the same token may have written).
default_marker="<!-- rollout:plan:default-branch -->"
# comment_limit is GitHub's limit on a comment's body (65,536 characters), less room to spare; the body
# is measured in bytes, never fewer than its characters.
comment_limit="${ROLLOUT_COMMENT_LIMIT:-65000}"

# args: one argument per line when there are several lines (so an argument may hold spaces), else
# split on whitespace. It is expanded as ${args[@]+"${args[@]}"}: bash before 4.4 (macOS's /bin/bash)
# calls an empty array unset under set -u.
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

# A cancelled job (timeout-minutes, a person's cancel, a newer run of a cancel-in-progress group) gets
# SIGINT, then SIGTERM 7.5 s later, then SIGKILL 2.5 s after that, each sent by the runner to the step's
# process alone: this script (action.yml execs it), never to rollout. on_signal passes each on to the
# rollout that runs, which finishes what it is writing first (a rollback commit's notification, or the
# commit that records it as owed) and which run_rollout waits for; no rollout starts after it. With no
# rollout running the script stops, as a shell does.
# On Windows the runner sends console events instead (Ctrl-C, then Ctrl-Break), which reach every
# process of the step's console, rollout too; Git Bash's kill would end rollout at once (SIGTERM is
# ExitProcess for a program that is not an MSYS one), so nothing is passed on there.
signalled=""
rollout_pid=""
pass_on=true
case "${OSTYPE:-}" in msys* | cygwin*) pass_on=false ;; esac
# fd 3 is the step's log: on_signal runs inside the redirections of the rollout it passes a signal to.
exec 3>&2
# shellcheck disable=SC2317 # the traps below call it
on_signal() {
  [[ -n "$signalled" ]] || signalled="$1"
  if [[ -z "$rollout_pid" ]]; then
    exit "$((128 + $(kill -l "$1")))"
  fi
  if [[ "$pass_on" != true ]]; then
    echo "rollout: SIG$1: waiting for rollout, which finishes the writes under way first" >&3
    return 0
  fi
  echo "rollout: SIG$1: passed on to rollout, which finishes the writes under way first" >&3
  kill -s "$1" "$rollout_pid" 2>/dev/null || true
}
trap 'on_signal INT' INT
trap 'on_signal TERM' TERM
[[ "$pass_on" == true ]] || trap 'on_signal QUIT' QUIT

# run_rollout COMMAND [ARG…] runs rollout in the background, so that on_signal can pass the runner's
# signals on to it, and waits for it to end; it returns rollout's own exit status (128 + the signal's
# number for a rollout not started because the step was cancelled).
run_rollout() {
  if [[ -n "$signalled" ]]; then
    echo "rollout: SIG$signalled: the step was cancelled; not running \`rollout ${2:-}\`" >&3
    return "$((128 + $(kill -l "$signalled")))"
  fi
  # A script's background command starts with SIGINT ignored: rollout must hear it as a terminal
  # would let it (and stop at once when it is not writing yet).
  ( trap - INT QUIT; exec "$@" 3>&- ) &
  rollout_pid=$!
  local rc=0
  wait "$rollout_pid" || rc=$?
  # A trapped signal ends `wait` early (128 + its number) while rollout still runs: wait again.
  while [[ $rc -gt 128 ]] && kill -0 "$rollout_pid" 2>/dev/null; do
    rc=0
    wait "$rollout_pid" || rc=$?
  done
  if [[ -n "$signalled" ]]; then
    # rollout may have ended between an interrupted `wait` and `kill -0`: bash still holds its status
    # (an older bash that already gave it answers 127, and rc is rollout's own).
    local again=0
    wait "$rollout_pid" 2>/dev/null || again=$?
    [[ $again -eq 127 ]] || rc=$again
  fi
  rollout_pid=""
  return "$rc"
}

# flatten_results is the jq filter that reads rollout's JSON output as one list of objects: an array of
# one object per rollout (reconcile, plan, status), or a single object; JSON Lines from older versions too.
# A run that failed as a whole prints {"error", "hint"}, which names no rollout: report_failure shows it.
flatten_results='[.[] | if type == "array" then .[] else . end | select(type == "object" and has("rollout"))]'

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

# log_untrusted FILE prints what rollout said (FILE) to the log with the runner's workflow commands
# stopped: its messages quote file names and spec values that a pull request chose (a file named
# "x<newline>::add-mask::…" or "::error …"), which must be shown as text, never run. The token that
# turns them on again is random, so the text cannot guess it.
log_untrusted() {
  [[ -s "$1" ]] || return 0
  local token
  token="rollout-$(od -An -N16 -tx1 /dev/urandom 2>/dev/null | tr -d ' \n')"
  [[ "$token" != rollout- ]] || token="rollout-$RANDOM$RANDOM$RANDOM$RANDOM"
  echo "::stop-commands::$token"
  cat "$1"
  # The token must start a line of its own to turn the commands on again.
  [[ -z "$(tail -c 1 "$1")" ]] || echo
  echo "::$token::"
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

# github_api METHOD PATH [JSON_FILE] calls the GitHub REST API with the token, printing the response
# body; it fails, saying the status, on any answer of 400 or more. The token goes in a header file,
# never on a command line. PATH may be a whole URL (a Link header's next page); the response's headers
# are left in $work/headers.
github_api() {
  local method="$1" path="$2" data="${3:-}" url code
  url="$path"
  [[ "$url" == http* ]] || url="${GITHUB_API_URL:-https://api.github.com}"; url="${url%/}"
  [[ "$path" == http* ]] || url="$url/$path"
  ( umask 077; printf 'Authorization: Bearer %s\n' "${GH_TOKEN:-${GITHUB_TOKEN:-}}" > "$work/auth" )
  local curl_args=(-sS -X "$method" -H @"$work/auth" -H "Accept: application/vnd.github+json"
    -H "X-GitHub-Api-Version: 2022-11-28" -D "$work/headers" -o "$work/response" -w '%{http_code}')
  [[ -n "$data" ]] && curl_args+=(-H "Content-Type: application/json" --data-binary @"$data")
  code="$(curl "${curl_args[@]}" "$url")" || return 1
  if [[ "$code" -ge 400 ]]; then
    echo "rollout: GitHub answered $code to $method ${path%%\?*}: $(jq -r '.message // empty' "$work/response" 2>/dev/null)" >&2
    return 1
  fi
  cat "$work/response"
}

# own_comment_filter prints the jq condition that picks the comments this run's token wrote, so that a
# comment anyone else wrote with the marker is never edited (nor its author's text replaced): the
# login GET /user names for the token (a user's or a bot's token), or ROLLOUT_COMMENT_AUTHOR; an App's
# installation token (GITHUB_TOKEN among them) has no user, and its comments are those of a Bot account
# made by a GitHub App acting as itself (login "<app slug>[bot]"), which no person can forge.
own_comment_filter() {
  local login="${ROLLOUT_COMMENT_AUTHOR:-}"
  [[ -n "$login" ]] || login="$(github_api GET user 2>/dev/null | jq -r '.login // empty')"
  if [[ -n "$login" ]]; then
    jq -nc --arg login "$login" '"(.user.login == " + ($login | tojson) + ")"' | jq -r .
  else
    echo '(.user.type == "Bot" and .performed_via_github_app != null and .user.login == ((.performed_via_github_app.slug // "") + "[bot]"))'
  fi
}

# cap_comment prints the plan (file $1) as it fits in one comment: whole if it does; else the header
# and table (one line per rollout), as many rollouts' evidence as fit, then one line per rollout whose
# evidence did not, and a link to the job summary, which holds the whole plan.
cap_comment() {
  local link="the job summary of this run"
  if [[ -n "${GITHUB_RUN_ID:-}" && -n "${GITHUB_REPOSITORY:-}" ]]; then
    link="[the job summary](${GITHUB_SERVER_URL:-https://github.com}/$GITHUB_REPOSITORY/actions/runs/$GITHUB_RUN_ID)"
  fi
  LC_ALL=C awk -v limit="$((comment_limit - ${#marker} - 1))" -v link="$link" '
    { line = $0 "\n" }
    /^<details>/ { n++; name[n] = $0; sub(/^<details><summary>/, "", name[n]); sub(/: evidence<\/summary>.*$/, "", name[n]) }
    n == 0 { head = head line; next }
    { block[n] = block[n] line }
    END {
      out = head
      for (i = 1; i <= n; i++) total += length(block[i])
      if (length(out) + total <= limit) { printf "%s", out; for (i = 1; i <= n; i++) printf "%s", block[i]; exit }
      for (i = 1; i <= n; i++) rest[i] = length(name[i]) + 40
      for (i = n - 1; i >= 1; i--) rest[i] += rest[i + 1]
      for (i = 1; i <= n; i++) {
        if (!cut && length(out) + length(block[i]) + (i < n ? rest[i + 1] : 0) + 400 <= limit) { out = out block[i]; continue }
        cut = 1; skipped++; lines = lines "- `" name[i] "`: evidence in the job summary\n"
      }
      note = "\n**The plan is longer than a comment holds: " skipped " rollouts'"'"' evidence is in " link ".**\n\n"
      out = out note lines
      if (length(out) > limit) out = substr(out, 1, limit - 300) "\n\n**Cut at the comment limit; the whole plan is in " link ".**\n"
      printf "%s", out
    }' "$1"
}

# upsert_comment FILE [MARKER] keeps one comment beginning with MARKER (default: the plan's marker),
# written by this run's token, on the pull request that triggered the run: it updates the first such
# comment of its own and creates one otherwise.
upsert_comment() {
  local body_file="$1" marker="${2:-$marker}" number id filter url
  # A pull_request event, or an issue_comment one (`/rollout plan` on the pull request).
  number="$(jq -r '.pull_request.number // .issue.number // empty' "${GITHUB_EVENT_PATH:-/dev/null}" 2>/dev/null)"
  if [[ -z "$number" ]]; then
    echo "rollout: not a pull_request or issue_comment event; no plan comment" >&2
    return 0
  fi
  { echo "$marker"; cap_comment "$body_file"; } > "$work/comment.md"
  jq -Rs '{body: .}' "$work/comment.md" > "$work/comment.json" || return 1
  filter="$(own_comment_filter)"
  id=""
  url="repos/$GITHUB_REPOSITORY/issues/$number/comments?per_page=100"
  while [[ -n "$url" && -z "$id" ]]; do
    github_api GET "$url" > "$work/comments.json" || return 1
    id="$(jq -r --arg marker "$marker" ".[] | select((.body | startswith(\$marker)) and $filter) | .id" "$work/comments.json" | head -n1)"
    url="$(tr -d '\r' < "$work/headers" | sed -n 's/^[Ll]ink:.*<\([^>]*\)>; rel="next".*/\1/p')"
  done
  if [[ -n "$id" ]]; then
    github_api PATCH "repos/$GITHUB_REPOSITORY/issues/comments/$id" "$work/comment.json" > /dev/null
  else
    github_api POST "repos/$GITHUB_REPOSITORY/issues/$number/comments" "$work/comment.json" > /dev/null
  fi
}

# chain_warning says, for a command that commits to the default branch, that a push with the job's own
# GITHUB_TOKEN starts no workflow: an export or deploy workflow chained on the push does not run after a
# rollback, unless this job writes the export itself (the export-growthbook input).
chain_warning() {
  case "$command" in reconcile|rollback|pause|resume|promote|retry|comment) ;; *) return 0 ;; esac
  [[ "${ROLLOUT_TOKEN_IS_GITHUB_TOKEN:-}" == "true" && -z "${ROLLOUT_EXPORT_GROWTHBOOK:-}" ]] || return 0
  local msg="this job pushes with GITHUB_TOKEN, whose commits start no workflow: a workflow chained on the push (rollout-export.yml, a deploy) will not run after a rollback, so applications keep the canary. Set the export-growthbook input (the commit then carries the export), or pass a GitHub App token (docs/github.md)."
  echo "::warning title=rollout: rollbacks may not reach your applications::$msg"
  { echo; echo "> **Warning:** $msg"; } >> "$summary"
}
chain_warning

case "$command" in
  reconcile|status)
    run_rollout "$rollout" "$command" --dir "$dir" -o json ${args[@]+"${args[@]}"} > "$work/out.json" 2> "$work/err.txt" || status=$?
    log_untrusted "$work/err.txt" >&2
    { echo "### rollout $command"; echo; json_table "$work/out.json"; } >> "$summary"
    report_failure
    set_decisions "$work/out.json"
    ;;
  plan)
    run_rollout "$rollout" plan --dir "$dir" -o json ${args[@]+"${args[@]}"} > "$work/out.json" 2> "$work/err.txt" || status=$?
    log_untrusted "$work/err.txt" >&2
    run_rollout "$rollout" plan --dir "$dir" --format markdown ${args[@]+"${args[@]}"} > "$work/plan.md" 2> "$work/err-md.txt" || status=$?
    log_untrusted "$work/err-md.txt" >&2
    cat "$work/plan.md" >> "$summary"
    report_failure
    set_decisions "$work/out.json"
    if [[ "${INPUT_COMMENT:-true}" == "true" ]] && ! upsert_comment "$work/plan.md"; then
      # A pull request from a fork gets a read-only token: no comment, but the plan is in the summary
      # and the check stays green. Any other failure to comment fails the step.
      if [[ "$(jq -r '(.pull_request.head.repo.fork // false) or ((.pull_request.head.repo.full_name // "") != (.pull_request.base.repo.full_name // ""))' "${GITHUB_EVENT_PATH:-/dev/null}" 2>/dev/null)" == "true" ]]; then
        echo "::warning::rollout: the plan comment was not posted: a fork's pull request gets a read-only token. The plan is in the job summary."
        echo "_The plan comment was not posted: this pull request comes from a fork, whose token is read-only._" >> "$summary"
      else
        status=1
      fi
    fi
    ;;
  comment)
    # The issue_comment event: rollout runs the /rollout commands of a new comment (write permission
    # or above only), replies and reacts; `/rollout plan` is answered here, by the plan comment.
    run_rollout "$rollout" comment --dir "$dir" -o json ${args[@]+"${args[@]}"} > "$work/out.json" 2> "$work/err.txt" || status=$?
    log_untrusted "$work/err.txt" >&2
    {
      echo "### rollout comment"; echo
      jq -r 'def cell: tostring | gsub("[|\n\r<>]"; " ");
        if .ignored then "_Nothing to do: \(.ignored | cell)._"
        elif .refused then "_Refused: \(.refused | cell)._"
        else (["| command | rollout | weight | commit | error |", "|---|---|---|---|---|"] +
          (.commands | map("| \(.command | cell) | \(.rollout // "" | cell) | \(if .commit then "\(.from) → \(.to)" else "" end) | \(.commit // "" | .[0:8]) | \(.error // "" | cell) |"))) | join("\n") end' "$work/out.json" 2>/dev/null
    } >> "$summary"
    report_failure
    jq -c '[.commands[] | {rollout, decision: (.command | split(" ")[1] // ""), from, to, commit, error}]' "$work/out.json" > "$work/decisions.json" 2>/dev/null || echo "[]" > "$work/decisions.json"
    set_decisions "$work/decisions.json"
    if [[ -z "$signalled" && "$(jq -r '.plan // false' "$work/out.json" 2>/dev/null)" == "true" ]]; then
      # The plan is the answer: exit 1 (a rollout failed, such as a metrics source that does not
      # answer) is in the plan itself, and fails no step. Only a plan that could not be made, or a
      # comment that could not be posted, does.
      plan_status=0
      run_rollout "$rollout" plan --dir "$dir" --format markdown > "$work/plan.md" 2> "$work/err-md.txt" || plan_status=$?
      log_untrusted "$work/err-md.txt" >&2
      if [[ $plan_status -gt 1 || ! -s "$work/plan.md" ]]; then
        status=1
        { echo; echo "**rollout plan failed (exit $plan_status):**"; echo; echo '```'; tail -n 20 "$work/err-md.txt" | tr -d '`'; echo '```'; } >> "$summary"
      else
        cat "$work/plan.md" >> "$summary"
        {
          echo "_The plan of the default branch, as \`/rollout plan\` asked: what the next reconcile does. A pull request's own plan (what merging it does) is the comment of the \`rollout plan\` workflow._"
          echo
          cat "$work/plan.md"
        } > "$work/plan-comment.md"
        upsert_comment "$work/plan-comment.md" "$default_marker" || status=1
      fi
    fi
    ;;
  evaluate)
    run_rollout "$rollout" evaluate --dir "$dir" -o json ${args[@]+"${args[@]}"} > "$work/out.json" 2> "$work/err.txt" || status=$?
    log_untrusted "$work/err.txt" >&2
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
    run_rollout "$rollout" validate --dir "$dir" --format github ${args[@]+"${args[@]}"} || status=$?
    if [[ $status -eq 0 ]]; then echo "### rollout validate: every spec is valid" >> "$summary"; else echo "### rollout validate: problems found (see the annotations)" >> "$summary"; fi
    set_decisions /dev/null
    ;;
  report)
    # The page and one SVG per chart go to a folder the action uploads as an artifact (report-dir); the
    # summary shows each rollout's newest stage, rule by rule, and names the chart files.
    report_dir="${ROLLOUT_REPORT_DIR:-${RUNNER_TEMP:-.}/rollout-report}"
    mkdir -p "$report_dir"
    run_rollout "$rollout" report --dir "$dir" --out "$report_dir/index.html" --charts "$report_dir/charts" \
      --summary "$work/report.md" --artifact "${INPUT_ARTIFACT:-rollout-report}" ${args[@]+"${args[@]}"} 2> "$work/err.txt" || status=$?
    log_untrusted "$work/err.txt" >&2
    if [[ -s "$work/report.md" ]]; then cat "$work/report.md" >> "$summary"; else echo "### rollout report" >> "$summary"; fi
    report_failure
    echo "report-dir=$report_dir" >> "$output"
    set_decisions /dev/null
    ;;
  *)
    # rollback, pause, resume, history, …: plain output, shown in the summary.
    run_rollout "$rollout" "$command" --dir "$dir" ${args[@]+"${args[@]}"} > "$work/out.txt" 2>&1 || status=$?
    log_untrusted "$work/out.txt"
    { echo "### rollout $command"; echo; echo '```'; cat "$work/out.txt"; echo '```'; } >> "$summary"
    set_decisions /dev/null
    ;;
esac
# A cancelled step never reads as a success, even when rollout finished what it had started.
if [[ -n "$signalled" && $status -eq 0 ]]; then
  status=$((128 + $(kill -l "$signalled")))
fi
exit "$status"
