# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
VAR_DIR ?= var
# pytest arguments, e.g. `make test ARGS="-k bus -x"`
ARGS ?=

.PHONY: run test test-unit test-integration bench cluster cluster-stop clean testbed testbed-clean

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

## run: one management node on the embedded default (SQLite, memory bus, 127.0.0.1:8080)
run: $(STAMP)
	$(BIN)/zstack-ctl start --foreground --var-dir $(VAR_DIR)

## test: the whole suite (unit, integration on RabbitMQ + MariaDB, e2e, chaos)
test: $(STAMP)
	$(BIN)/python -m pytest $(ARGS)

test-unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit $(ARGS)

## bench: speed and scale figures (not tests)
# `make bench VMS=10000` for the full VM creation run (default 1,000 VMs);
# KVM_VMS of them again on simulated-agent KVM hosts (default: as many, 0 skips)
VMS ?= 1000
KVM_VMS ?= $(VMS)
BENCH_STAMP := $(VENV)/.bench-installed
$(BENCH_STAMP): $(STAMP)
	$(BIN)/pip install --quiet -e '.[test,bench]'
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(BIN)/python benchmarks/bus.py
	$(BIN)/python benchmarks/workqueue.py
	$(BIN)/python benchmarks/vm_create.py --vms $(VMS) --kvm-vms $(KVM_VMS)
	$(BIN)/python benchmarks/profile_vm_create.py
	$(BIN)/python benchmarks/query.py
	$(BIN)/python benchmarks/api_read.py
	$(BIN)/python benchmarks/failover.py
	$(BIN)/python benchmarks/host_tracking.py
	$(BIN)/python benchmarks/report.py --command "make bench VMS=$(VMS) KVM_VMS=$(KVM_VMS)"

## cluster: MNS management nodes on this machine (ports 8081, 8082, ...) on the
# local MariaDB (database zstack_cluster) and RabbitMQ, e.g. `make cluster MNS=3`;
# CLUSTER_DB_URL / CLUSTER_BUS_URL point them elsewhere. `make cluster-stop` stops them.
MNS ?= 3
CLUSTER_DIR = $(VAR_DIR)/cluster
cluster: $(STAMP)
	$(BIN)/python tools/cluster.py up --mns $(MNS) --var-dir $(CLUSTER_DIR) \
		$(if $(CLUSTER_DB_URL),--db-url '$(CLUSTER_DB_URL)') $(if $(CLUSTER_BUS_URL),--bus-url '$(CLUSTER_BUS_URL)')

cluster-stop: $(STAMP)
	$(BIN)/python tools/cluster.py down --var-dir $(CLUSTER_DIR)

## testbed: KVM "hosts" as network namespaces with sshd (needs root), e.g.
# `make testbed HOSTS=3 LIBVIRT_HOST=1`; see tests/support/testbed.py
HOSTS ?= 2
LIBVIRT_HOST ?=
testbed: $(STAMP)
	$(BIN)/python -m tests.support.testbed up --hosts $(HOSTS) $(if $(LIBVIRT_HOST),--libvirt-host $(LIBVIRT_HOST))

testbed-clean: $(STAMP)
	$(BIN)/python -m tests.support.testbed down

clean:
	rm -rf $(VENV) $(VAR_DIR) .pytest_cache
