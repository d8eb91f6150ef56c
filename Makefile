# examhall — the two commands a new user needs are `make run` and `make test`.
GO   ?= go
ARGS ?=

.PHONY: run build test test-short vet clean

## run: build and start the demo (SQLite, in-process bus) at http://127.0.0.1:8080
run: build
	./bin/examhall demo $(ARGS)

## build: compile the single binary to bin/examhall
build:
	$(GO) build -o bin/examhall ./cmd/examhall

## test: every test, with throwaway PostgreSQL and Redis when they are installed:
## first everything under the race detector, then the end-to-end tests
## (Chromium, Firefox ESR, the real binary, SIGKILL) at full speed
test:
	@command -v redis-server >/dev/null && ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || \
		echo "note: PostgreSQL and Redis variants need 'apt-get install postgresql redis-server' (.ci/run does it); running the rest."
	$(GO) vet ./...
	@if command -v npm >/dev/null; then npm ci --prefix frontend/browsertest/firefox --no-audit --no-fund --loglevel=error; \
		else echo "note: the Firefox test needs Node.js and npm ('apt-get install nodejs npm firefox-esr'; .ci/run does it)"; fi
	.ci/with-services sh -c '$(GO) test -race -short -count=1 ./... && $(GO) test -count=1 -run "Chromium|Firefox|Binary|Kill" ./...'

## test-short: unit tests only, no databases started, seconds
test-short:
	$(GO) test -short -count=1 ./...

clean:
	rm -rf bin
