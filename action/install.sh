#!/usr/bin/env bash
# Puts the rollout binary for this runner in place for the GitHub Action in action.yml, in seconds:
# the release archive matching the action's own ref (or the `version` input), checked against the
# release's checksums.txt, kept in the runner's tool cache. Only when the ref has no release (a branch
# or a commit that no release tag points at) does it ask the next steps to build from source.
#
# Environment:
#   INPUT_VERSION       the `version` input: a release tag (v1.4.0 or 1.4.0); overrides the ref
#   ACTION_REF          ${{ github.action_ref }}: v1, v1.4.0, main or a commit SHA
#   ACTION_REPOSITORY   ${{ github.action_repository }}: rollout-dev/rollout
#   GITHUB_ACTION_PATH  …/_actions/OWNER/REPO/REF: read when the two above are empty, as they are in
#                       composite actions on some runners (actions/runner#2473)
#   GITHUB_API_URL      the REST API (default https://api.github.com)
#   GITHUB_TOKEN        read-only use: raises the API's rate limit from 60 an hour per runner IP
#   RUNNER_OS, RUNNER_ARCH, RUNNER_TOOL_CACHE, RUNNER_TEMP, GITHUB_OUTPUT: set by the runner
#
# Outputs (GITHUB_OUTPUT): bin (the binary's path), version (the release, or the ref built from),
# source (cache | release | build), build (true when the next steps must build bin from source).
set -euo pipefail

api="${GITHUB_API_URL:-https://api.github.com}"
api="${api%/}"
output="${GITHUB_OUTPUT:-/dev/null}"
temp="${RUNNER_TEMP:-${TMPDIR:-/tmp}}"
tool_cache="${RUNNER_TOOL_CACHE:-$temp/tool-cache}"

fail() {
	echo "::error title=rollout action::$*" >&2
	echo "rollout: $*" >&2
	exit 1
}

# The action's own repository and ref, from the expressions or else from the path it was checked
# out to (…/_actions/rollout-dev/rollout/v1).
repo="${ACTION_REPOSITORY:-}"
ref="${ACTION_REF:-}"
if [[ -z "$repo" || -z "$ref" ]] && [[ "${GITHUB_ACTION_PATH:-}" == */_actions/*/*/* ]]; then
	rest="${GITHUB_ACTION_PATH#*/_actions/}"
	IFS=/ read -r path_owner path_repo path_ref _ <<< "$rest"
	repo="${repo:-$path_owner/$path_repo}"
	ref="${ref:-$path_ref}"
fi
repo="${repo:-rollout-dev/rollout}"

case "${RUNNER_OS:-$(uname -s)}" in
	Linux) os=linux ;;
	macOS | Darwin) os=darwin ;;
	Windows | MINGW* | MSYS* | CYGWIN*) os=windows ;;
	*) fail "no rollout release for the runner OS ${RUNNER_OS:-$(uname -s)}" ;;
esac
case "${RUNNER_ARCH:-$(uname -m)}" in
	X64 | x86_64 | amd64) arch=amd64 ;;
	ARM64 | arm64 | aarch64) arch=arm64 ;;
	*) fail "no rollout release for the runner architecture ${RUNNER_ARCH:-$(uname -m)}" ;;
esac
exe=rollout
ext=tar.gz
if [[ $os == windows ]]; then exe=rollout.exe ext=zip; fi

# build asks the next steps (setup-go, go build) to build rollout from the action's source.
build() {
	local bin="$temp/rollout-bin/$exe"
	echo "rollout: $1; building rollout from source ($repo@${ref:-unknown ref})" >&2
	{ echo "bin=$bin"; echo "version=${ref:-source}"; echo "source=build"; echo "build=true"; } >> "$output"
	exit 0
}

# api_get PATH FILE writes the answer of the REST API to FILE and the HTTP status to $status
# ("000" when there was no answer); it succeeds on 200 only. No subshells: each one is a fork, and
# the install should take as few as it can.
status=""
api_get() {
	local args=(--silent --show-error --location --retry 3 --retry-connrefused --connect-timeout 10
		--header "Accept: application/vnd.github+json" --header "X-GitHub-Api-Version: 2022-11-28"
		--write-out '%{http_code}\n' --output "$2")
	if [[ -n "${GITHUB_TOKEN:-}" ]]; then args+=(--header "Authorization: Bearer $GITHUB_TOKEN"); fi
	curl "${args[@]}" "$api/$1" > "$work/status" || echo "000" > "$work/status"
	read -r status < "$work/status" || true
	[[ "$status" == 200 ]]
}

work="$(mktemp -d "$temp/rollout-install.XXXXXX")"
trap 'rm -rf "$work"' EXIT

# release_json TAG writes the release of TAG to $work/release.json; it fails when there is none.
release_json() { api_get "repos/$repo/releases/tags/$1" "$work/release.json"; }

# release_for_ref sets $tag to the release a ref stands for: the ref itself when it is a release tag
# (v1.4.0); else the newest vX.Y.Z tag on the same commit as the ref, which is a moving tag (v1,
# moved by the release workflow to each release) or a commit SHA. $tag stays empty when none.
tag=""
release_for_ref() {
	local r="$1"
	if release_json "$r"; then
		tag="$r"
		return 0
	fi
	if [[ "$status" != 404 ]]; then
		# A rate limit or an outage: building from source is slower but needs nothing from the API.
		echo "::warning title=rollout action::could not read the release $r of $repo (HTTP $status)" >&2
		return 0
	fi
	api_get "repos/$repo/tags?per_page=100" "$work/tags.json" || return 0
	# One jq: the commit of the ref (the ref itself when it is a full SHA), then the highest vX.Y.Z
	# tag on that commit.
	tag="$(jq -r --arg r "$r" '
		(if ($r | test("^[0-9a-f]{40}$")) then $r else (map(select(.name == $r)) | first | .commit.sha // "") end) as $sha
		| map(select(.commit.sha == $sha and (.name | test("^v[0-9]+\\.[0-9]+\\.[0-9]+$"))) | .name)
		| sort_by(ltrimstr("v") | split(".") | map(tonumber)) | last // ""' "$work/tags.json")"
	if [[ -n "$tag" ]]; then release_json "$tag" || tag=""; fi
}

# sha256_of FILE prints the SHA-256 of FILE.
sha256_of() {
	if command -v sha256sum > /dev/null; then
		sha256sum "$1" | awk '{print $1}'
	else
		shasum -a 256 "$1" | awk '{print $1}'
	fi
}

# in_cache TAG: the binary of release TAG is in the tool cache already, and still has the SHA-256 it
# had when it was verified against the release's checksums.txt (recorded in the marker beside it): it
# is re-checked on every use, so a binary changed in the cache since (a shared self-hosted runner, a
# cache restored from elsewhere) is never run. A mismatch drops the entry and downloads it again.
in_cache() {
	local d="$tool_cache/rollout/${1#v}/$arch" recorded="" actual
	if [[ -f "$d.complete" && -x "$d/$exe" ]]; then
		read -r recorded < "$d.complete" || true
		actual="$(sha256_of "$d/$exe")"
		if [[ -n "$recorded" && "$actual" == "$recorded" ]]; then
			echo "rollout: $1 from the tool cache ($d, sha256 $actual re-checked)" >&2
			{ echo "bin=$d/$exe"; echo "version=$1"; echo "source=cache"; echo "build=false"; } >> "$output"
			exit 0
		fi
		echo "::warning title=rollout action::the tool cache's rollout $1 ($d/$exe) does not have the checksum recorded when it was verified (sha256 $actual, recorded ${recorded:-none}); downloading it again" >&2
		rm -f "$d.complete" "$d/$exe"
	fi
}

# A version named outright (the input, or a ref such as v1.4.0) found in the tool cache needs no API
# call: a second use of the action in the same job, or any job on a self-hosted runner.
if [[ -n "${INPUT_VERSION:-}" ]]; then
	in_cache "v${INPUT_VERSION#v}"
elif [[ "$ref" =~ ^v[0-9]+\.[0-9]+\.[0-9]+$ ]]; then
	in_cache "$ref"
fi

if [[ -n "${INPUT_VERSION:-}" ]]; then
	tag="v${INPUT_VERSION#v}"
	if ! release_json "$tag"; then
		[[ "$status" != 404 ]] || fail "the version input asks for $tag, but $repo has no such release"
		# Not a missing release: a rate limit, an outage, a token GitHub refused. Building the action's
		# ref instead would run another version than the one asked for.
		fail "could not read the release $tag of $repo (HTTP $status: a rate limit, an outage or a refused token); run the job again"
	fi
else
	[[ -n "$ref" ]] || build "the action's ref is unknown"
	release_for_ref "$ref"
	[[ -n "$tag" ]] || build "$ref is not a release of $repo"
fi
version="${tag#v}"
archive="rollout_${version}_${os}_${arch}.${ext}"

# The tool cache's layout (<cache>/<tool>/<version>/<arch> and a marker beside it) is the one of
# @actions/tool-cache, so a self-hosted runner keeps one copy per version.
dir="$tool_cache/rollout/$version/$arch"
in_cache "$tag"

# download NAME FILE fetches a release asset through the API (Accept: application/octet-stream
# answers with a redirect to the file, which curl follows without the token).
download() {
	local id
	id="$(jq -r --arg n "$1" '.assets[] | select(.name == $n) | .id' "$work/release.json" | head -n1)"
	[[ -n "$id" ]] || fail "the release $tag of $repo has no asset $1"
	local args=(--silent --show-error --fail --location --retry 3 --retry-connrefused --connect-timeout 10
		--header "Accept: application/octet-stream" --header "X-GitHub-Api-Version: 2022-11-28" --output "$2")
	if [[ -n "${GITHUB_TOKEN:-}" ]]; then args+=(--header "Authorization: Bearer $GITHUB_TOKEN"); fi
	curl "${args[@]}" "$api/repos/$repo/releases/assets/$id" || fail "downloading $1 from the release $tag of $repo failed"
}

download checksums.txt "$work/checksums.txt"
download "$archive" "$work/$archive"

want="$(awk -v n="$archive" '$2 == n || $2 == "*" n { print $1 }' "$work/checksums.txt" | head -n1)"
[[ -n "$want" ]] || fail "checksums.txt of the release $tag does not list $archive; refusing to run it"
got="$(sha256_of "$work/$archive")"
if [[ "$got" != "$want" ]]; then
	fail "$archive does not match the release's checksums.txt (sha256 $got, want $want); refusing to run it"
fi

mkdir -p "$work/unpacked"
if [[ $ext == zip ]]; then
	if command -v unzip > /dev/null; then unzip -q "$work/$archive" -d "$work/unpacked"; else tar -xf "$work/$archive" -C "$work/unpacked"; fi
else
	tar -xzf "$work/$archive" -C "$work/unpacked"
fi
[[ -f "$work/unpacked/$exe" ]] || fail "$archive holds no $exe"
mkdir -p "$dir"
mv -f "$work/unpacked/$exe" "$dir/$exe"
chmod +x "$dir/$exe"
# The marker records the binary's own SHA-256, which in_cache re-checks on every later use.
sha256_of "$dir/$exe" > "$dir.complete"
echo "rollout: $tag downloaded from $repo and verified (sha256 $got)" >&2
{ echo "bin=$dir/$exe"; echo "version=$tag"; echo "source=release"; echo "build=false"; } >> "$output"
