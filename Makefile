# The two commands: `make dev` (run the service locally) and `make test` (every test and check).
.PHONY: dev test lint fmt install stop clean

dev: ## install what is missing, start the local stack, seed demo data, serve the API on :3000
	infra/dev.sh

test: lint ## lint, then all unit and integration tests against a local stack of their own
	infra/test.sh

lint: ## formatting and clippy, warnings are errors
	cargo fmt --all --check
	cargo clippy --workspace --all-targets --quiet -- -D warnings

fmt:
	cargo fmt --all

install: ## install DynamoDB Local and LocalStack into .local/ (idempotent)
	infra/install.sh

stop: ## stop a `make dev` stack left running (e.g. after kill -9)
	infra/stack.sh stop .local/dev

clean:
	rm -rf target .local
