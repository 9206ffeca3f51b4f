#!/usr/bin/env bash
# Build an application's image ONCE and push it to ECR under the three tags Slipway reads:
#   <sha7>              abc123d          the commit (7 hex characters of `git rev-parse HEAD`)
#   <version>-<sha7>    1.22.0-abc123d   the version from package.json (or --version-file/--version-command)
#   latest                               never deploys anything; it just follows the newest build
#
# Why build once and push three tags: ECR emits one "ECR Image Action" event per tag it stores, so
# this push makes three events. They all carry the same image digest because they are one image, and
# Slipway keys a deployment by (repository, digest): the three events make ONE deployment, pinned to
# that digest. Three builds, or a rebuild per tag, would make up to three digests and three
# deployments. The script checks that every `docker push` reported the same digest before it ends.
#
# Copy this file into the application's repository as docker/build-push.sh, beside its
# docker/Dockerfile. Run from the repository's root in CI, after logging Docker in to ECR:
#   docker/build-push.sh 123456789012.dkr.ecr.us-east-1.amazonaws.com/better-chatbot
# Exit codes: 0 pushed, 1 could not (the reason is printed), 2 usage.
set -euo pipefail

usage() {
    cat <<'USAGE'
usage: build-push.sh [options] REGISTRY/REPOSITORY [-- DOCKER-BUILD-ARGS...]

Builds the application's image once and pushes it as <sha7>, <version>-<sha7> and latest.

options:
  --dockerfile FILE        Dockerfile to build (default: docker/Dockerfile)
  --context DIR            build context and git work tree (default: .)
  --version-file FILE      where the version is: a *.json file's "version" key, or the first
                           line of any other file (default: package.json in the context)
  --version-command CMD    a command that prints the version (instead of --version-file)
  --allow-dirty            build even with uncommitted changes (local tries only, never in CI)
  -h, --help               this help
Arguments after -- go to `docker build` as they are (e.g. --platform linux/arm64).
USAGE
}

fail() { echo "build-push: $*" >&2; exit 1; }
usage_error() { echo "build-push: $*" >&2; usage >&2; exit 2; }

image=""
dockerfile="docker/Dockerfile"
context="."
version_file=""
version_command=""
allow_dirty=false
build_args=()

while [ $# -gt 0 ]; do
    case "$1" in
        --dockerfile|--context|--version-file|--version-command)
            [ $# -ge 2 ] || usage_error "$1 needs a value"
            case "$1" in
                --dockerfile) dockerfile=$2 ;;
                --context) context=$2 ;;
                --version-file) version_file=$2 ;;
                --version-command) version_command=$2 ;;
            esac
            shift 2 ;;
        --allow-dirty) allow_dirty=true; shift ;;
        -h|--help) usage; exit 0 ;;
        --) shift; build_args=("$@"); break ;;
        -*) usage_error "unknown option $1" ;;
        *)
            [ -z "$image" ] || usage_error "one image repository only (got '$image' and '$1')"
            image=$1; shift ;;
    esac
done

[ -n "$image" ] || usage_error "which image repository? e.g. 123456789012.dkr.ecr.us-east-1.amazonaws.com/my-app"
[ -z "$version_file" ] || [ -z "$version_command" ] || usage_error "--version-file or --version-command, not both"
# The repository without a tag or digest: the tags are this script's to choose.
case "${image##*/}" in
    *:*|*@*) usage_error "give the repository without a tag or digest: '${image%%[:@]*}', not '$image'" ;;
esac
[[ "$image" =~ ^[a-z0-9]([a-z0-9._/:-]*[a-z0-9])?$ ]] \
    || usage_error "'$image' is not an image repository name (lower case letters, digits, . _ - / only)"

command -v docker >/dev/null 2>&1 || fail "docker is not on PATH"
command -v git >/dev/null 2>&1 || fail "git is not on PATH"
[ -d "$context" ] || fail "build context '$context' is not a directory"
[ -f "$dockerfile" ] || fail "no Dockerfile at '$dockerfile' (pass --dockerfile FILE)"

# --- which commit: the tag must name exactly what is built -------------------------------------
sha=$(git -C "$context" rev-parse --verify --quiet 'HEAD^{commit}') \
    || fail "'$context' is not a git work tree with a commit: the <sha7> tag needs one"
sha7=${sha:0:7}
if [ "$allow_dirty" != true ]; then
    dirty=$(git -C "$context" status --porcelain --untracked-files=normal)
    if [ -n "$dirty" ]; then
        echo "build-push: uncommitted changes in '$context':" >&2
        printf '%s\n' "$dirty" | head -n 10 | sed 's/^/  /' >&2
        fail "the image would not be commit $sha7; commit or remove them (or --allow-dirty, never in CI)"
    fi
fi

# --- which version -----------------------------------------------------------------------------
json_version() {
    # The "version" string of a JSON file, or nothing. python3 or node: every CI runner has one.
    if command -v python3 >/dev/null 2>&1; then
        python3 - "$1" <<'PY'
import json, sys
try:
    with open(sys.argv[1], encoding="utf-8") as handle:
        data = json.load(handle)
except (OSError, ValueError) as exc:
    sys.exit(f"build-push: cannot read {sys.argv[1]}: {exc}")
value = data.get("version") if isinstance(data, dict) else None
print(value if isinstance(value, str) else "")
PY
    elif command -v node >/dev/null 2>&1; then
        node -e 'const v = require(require("path").resolve(process.argv[1])).version;
                 console.log(typeof v === "string" ? v : "")' "$1"
    else
        fail "reading $1 needs python3 or node"
    fi
}

if [ -n "$version_command" ]; then
    version=$(bash -c "$version_command") || fail "--version-command failed: $version_command"
    source_of_version="--version-command"
else
    version_file=${version_file:-$context/package.json}
    [ -f "$version_file" ] || fail "no $version_file: give the version with --version-file FILE or --version-command CMD"
    case "$version_file" in
        *.json) version=$(json_version "$version_file") || exit 1 ;;
        *) IFS= read -r version <"$version_file" || true ;;
    esac
    source_of_version=$version_file
fi
version=$(printf '%s' "$version" | tr -d '[:space:]')
[ -n "$version" ] || fail "no version in $source_of_version (package.json needs \"version\": \"1.2.3\")"
# A Docker tag is at most 128 characters of [A-Za-z0-9_.-], not starting with . or -.
[[ "$version" =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]*$ ]] \
    || fail "version '$version' from $source_of_version cannot be part of an image tag (letters, digits, . _ - only)"
[ ${#version} -le 120 ] || fail "version '$version' is too long for an image tag"

tags=("$sha7" "$version-$sha7" latest)

# --- build once, under all three tags ------------------------------------------------------------
echo "build-push: building $image at $sha7, version $version" >&2
docker build \
    --file "$dockerfile" \
    --label "org.opencontainers.image.revision=$sha" \
    --label "org.opencontainers.image.version=$version" \
    --tag "$image:${tags[0]}" --tag "$image:${tags[1]}" --tag "$image:${tags[2]}" \
    ${build_args[@]+"${build_args[@]}"} \
    "$context"

# --- push each tag of that one image -----------------------------------------------------------
# Not `docker push --all-tags`: on a reused runner it would also push every older tag left in the
# local image store. Layers are uploaded by the first push; the next two only add a tag to the same
# manifest (one ECR event each, same digest). `latest` goes last, once the deployable tags exist.
digest=""
for tag in "${tags[@]}"; do
    output=$(docker push "$image:$tag" | tee /dev/stderr) || fail "docker push $image:$tag failed"
    pushed=$(printf '%s\n' "$output" | sed -n 's/.*digest: \(sha256:[0-9a-f]\{64\}\).*/\1/p' | tail -n 1)
    [ -n "$pushed" ] || fail "docker push $image:$tag printed no digest"
    if [ -z "$digest" ]; then
        digest=$pushed
    elif [ "$pushed" != "$digest" ]; then
        fail "$image:$tag was pushed as $pushed but ${tags[0]} as $digest: Slipway would see two images"
    fi
done

echo "build-push: pushed $image@$digest as ${tags[*]}" >&2
if [ -n "${GITHUB_OUTPUT:-}" ]; then
    {
        echo "image=$image@$digest"
        echo "image-name=$image"
        echo "image-tag=$version-$sha7"
        echo "digest=$digest"
    } >>"$GITHUB_OUTPUT"
fi
printf '%s@%s\n' "$image" "$digest"
