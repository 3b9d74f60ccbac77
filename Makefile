# CityBrain. `make run` starts the whole system with the demo city; `make test` runs the test suite.
GO       ?= go
VERSION  ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
BIN      := bin/citybrain
DATA_DIR ?= data
HTTP     ?= 127.0.0.1:8080
FUZZTIME ?= 5s
export CITYBRAIN_DATA ?= $(abspath ../shared/data)
export SUMO_HOME ?= /usr/share/sumo

# Packages whose code runs goroutines: tested with -race.
RACE_PKGS := ./engine/... ./api/... ./eventlog/... ./replay/... ./system/... ./cmd/... ./ingest ./ingest/feed/... ./ingest/httpin ./ingest/natsin

.PHONY: all web build run test test-race test-rest test-web fuzz fuzz-long check bench bench-sustained bench-micro eval train-model clean centrifugo

all: build

# The command-center app (web/src → web/dist, embedded in the binary).
web:
	bash scripts/web-build.sh

build: web
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/citybrain

run: build
	./$(BIN) run --http $(HTTP) --data $(DATA_DIR)

# The whole suite: vet, race-checked packages, the rest, a short fuzz of every decoder, and the browser
# tests of the command center (Debian chromium driven by playwright-core).
test: web test-race test-rest fuzz test-web cluster-demo-short

test-race:
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 20m $(RACE_PKGS)

test-rest:
	$(GO) test -count=1 -timeout 20m $$($(GO) list ./... | grep -v -E 'citybrain/(engine|api|eventlog|replay|system|cmd)(/|$$)|citybrain/ingest$$|citybrain/ingest/(feed|httpin|natsin)')

test-web:
	bash scripts/web-test.sh

# Every Fuzz target for FUZZTIME (make fuzz FUZZTIME=2m for a longer run; FUZZ_ONLY=regexp picks targets).
fuzz:
	FUZZTIME=$(FUZZTIME) GO=$(GO) bash scripts/fuzz.sh

# The decoders of every input path (HTTP, Arrow, NATS subjects, the log, every feed) for 10 minutes each,
# one worker each, niced (docs/security.md): about two hours.
FUZZ_DECODERS := ^Fuzz(DecodeBatch|ReadIPC|IngestArrow|HTTPEvents|NATSSubjects|LogMessage|FCD|E1|GTFSRT|LoopCSV|DeepStream|Incidents)$$
fuzz-long:
	FUZZTIME=10m FUZZPARALLEL=1 FUZZ_ONLY='$(FUZZ_DECODERS)' GO=$(GO) nice bash scripts/fuzz.sh

check:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt: files above need formatting"; exit 1; }
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

# The load and latency harness (a fresh process, embedded NATS, temp data dir): JSON report and a table.
bench: build
	./$(BIN) bench --out bin/bench-report.json

# The sustained run: the overload section for 15 minutes of wall time under the memory budget.
bench-sustained: build
	./$(BIN) bench --sections overload --overload-for 15m --out bin/bench-sustained.json

# The Centrifugo server the bench compares fan-out against (bench/peers/README.md), built into bin/.
centrifugo:
	GO=$(GO) bash scripts/install-centrifugo.sh

# Micro-benchmarks of the hot paths (decode, cell assignment, window append, aggregation, delta encoding).
bench-micro:
	$(GO) test -run '^$$' -bench . -benchmem -count=1 ./engine/ ./ingest/ ./api/ ./geo/

# Incident detection against labelled ground truth: the demo city and SUMO Bologna with injected closures.
eval: build
	./$(BIN) eval --out bin/eval-report.json --table bin/eval-table.md

# The shipped detector model (engine/detect/model.json, "SR1-c6": docs/incidents.md, "a dense city outside the
# corpus"), fitted on the seven corpus cities, seeds 1 and 2, its operating point at most 1 false alarm/h per
# training city. CACHE: a prepared corpus (eval --prepare; default: eval's own cache, built on first use).
# --train-no-feeders: a full closure's feeder rows are near rows, as when SR1-c6 was chosen (session 17, 27
# features); its trees and point byte for byte on main's 28 features (session 19, the lead). The recipe is every
# fit's here (the proxy table's held-out models too); `make eval`'s leave-one-city-out models fit them as positives
# (8d6b07d) unless given it: the shipped fit with them found fewer closures outside the corpus (docs/incidents.md,
# "why SR1's recipe refitted on main loses the outside cities' closures").
CACHE ?=
train-model: build
	./$(BIN) eval --train engine/detect/model.json --cities bologna,monaco,hangzhou,nanchang,grid,spider,random --seeds 1,2 --minutes 60 --no-demo --cal-limit 1 --train-no-feeders $(if $(CACHE),--cache $(CACHE))

clean:
	rm -rf bin

# Closed-loop signal control in SUMO (docs/signals.md, docs/emergency.md): every built-in network under fixed
# time, SUMO's actuated and delay_based, the perfect-information max-pressure bound and the loop through
# CityBrain, SIGNALS_SEEDS seeds each (results cached under SIGNALS_WORK/cache: a rerun only runs what
# changed), then the emergency vehicle's green wave at Hangzhou ×5. Long: about 2 h on 2 shared cores.
SIGNALS_SEEDS ?= 3
SIGNALS_WORK ?= $(abspath bin/signals-work)
SIGNALS := nice ./$(BIN) signals --seeds $(SIGNALS_SEEDS) --work $(SIGNALS_WORK)
.PHONY: signals-sumo signals-sumo-short
signals-sumo: build
	$(SIGNALS) --net hangzhou --scale 1,3,5 --json bin/signals-hangzhou.json
	$(SIGNALS) --net nanchang-small,grid,bologna,monaco --scale 1,3 --json bin/signals-networks.json
	$(SIGNALS) --net hangzhou --scale 1 --method fixed --json bin/signals-ev-1x.json
	$(SIGNALS) --net hangzhou --scale 5 --method citybrain,citybrain+preempt --json bin/signals-ev-5x.json

# The short form (also part of make test; skips without sumo).
signals-sumo-short:
	$(GO) test -count=1 -run ClosedLoopShort -v ./bench/signals/

# CityBrain on a NATS cluster (docs/scale-out.md): 3 NATS nodes, 2 ingest, 3 engine and 2 api processes on
# loopback with the demo city; Ctrl-C stops everything. cluster-demo-short is the CI form (kills an engine
# node under load and checks the counts); cluster-failover runs TestClusterFailover with 10 engine kills;
# cluster-bench measures 1, 2 and 3 engine processes catching up on the same log.
.PHONY: cluster-demo cluster-demo-short cluster-failover cluster-bench
cluster-demo: build
	BIN=$(BIN) bash scripts/cluster-demo.sh

cluster-demo-short:
	$(GO) build -o $(BIN) ./cmd/citybrain
	BIN=$(BIN) bash scripts/cluster-demo.sh --short

cluster-failover:
	CITYBRAIN_FAILOVER_KILLS=10 $(GO) test -count=1 -timeout 40m -run TestClusterFailover -v ./cmd/citybrain/

cluster-bench:
	CITYBRAIN_CLUSTER_BENCH=1 $(GO) test -count=1 -timeout 30m -run TestClusterScaling -v ./cmd/citybrain/
