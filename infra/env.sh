# Sourced by the infra scripts: the local defaults of docs/api.md, overridable from the environment.
export AWS_REGION="${AWS_REGION:-us-east-1}"
export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-$AWS_REGION}"
export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-test}"
export AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-test}"
export TABLE_NAME="${TABLE_NAME:-inventory}"
export EVENT_BUS_NAME="${EVENT_BUS_NAME:-inventory-events}"
# Profiles or SSO settings of the developer's own AWS setup must not leak into the local stack.
unset AWS_PROFILE AWS_SESSION_TOKEN
