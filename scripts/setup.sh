#!/usr/bin/env bash
# Installs what protium needs to build and test, idempotently: the
# distribution's -dev packages (apt) and a Python virtual environment .venv
# with the pinned test packages of python/requirements-test.txt, the
# Apache Kafka broker jars the Kafka tests start (scripts/fetch-kafka), and
# the PySpark + delta-spark environment the Delta tests compare with
# (.venv-spark and its jars: scripts/fetch-delta-spark).
set -euo pipefail
cd "$(dirname "$0")/.."

apt_packages=(build-essential cmake pkg-config libcmocka-dev liblz4-dev libzstd-dev
              libuv1-dev libprotobuf-c-dev protobuf-c-compiler clang python3-venv valgrind
              openmpi-bin libopenmpi-dev libsnappy-dev zlib1g-dev libbrotli-dev
              postgresql-15 libpq-dev mariadb-server libmariadb-dev sqlite3
              librdkafka-dev openjdk-17-jdk-headless maven libssl-dev
              slurm-wlm slurm-client munge libpmix2 iproute2 openssl)

missing=()
for p in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

req=python/requirements-test.txt
stamp=.venv/.requirements-test.stamp
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  python3 -m venv .venv
fi
if ! cmp -s "$req" "$stamp" 2>/dev/null; then
  echo "setup: installing $req into .venv"
  .venv/bin/python -m pip install -q --disable-pip-version-check -r "$req"
  cp "$req" "$stamp"
fi

scripts/fetch-kafka
scripts/fetch-delta-spark
