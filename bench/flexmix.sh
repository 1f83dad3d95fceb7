#!/bin/sh
# dmoe fit against R's flexmix, side by side on the same CSV files, same box, same run.
#
#   bench/flexmix.sh [N ...]          (default: 20000 200000)
#
# For each N: simulated data (K = 3, d = 2, `dmoe simulate --seed 1`). Then a real data set that is
# not the diamonds the project tunes on: CPS1988 from R's AER package (28,155 US workers, March 1988
# Current Population Survey; log(wage) on education and experience), when AER is installed.
# Both programs fit K = 3 with 3 starts and a relative tolerance of 1e-6; flexmix as
# `stepFlexmix(y ~ ., k = 3, nrep = 3, concomitant = FLXPmultinom(~ .))`. Times are wall seconds on
# one core each: dmoe's of the whole command (reading the CSV included), flexmix's of the fit inside R
# (`system.time`, reading excluded). Installs nothing: without R and
# flexmix (`apt-get install r-base-core r-cran-flexmix`, and r-cran-aer for CPS1988) only dmoe runs.
set -eu
cd "$(dirname "$0")/.."
cargo build --release --quiet
DMOE=target/release/dmoe
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT INT TERM
HAVE_R=no
if command -v Rscript >/dev/null && Rscript -e 'library(flexmix)' >/dev/null 2>&1; then HAVE_R=yes; fi
# Both programs start warm: the check above loads R and flexmix once, this loads the freshly built
# binary (42 MB with its debug information) into the page cache.
$DMOE --version >/dev/null

now() { date +%s.%N; }

flexmix_fit() { # file -> "seconds loglik"
  Rscript - "$1" <<'R'
suppressMessages(library(flexmix))
d <- read.csv(commandArgs(TRUE)[1])
d <- d[, c("x1", "x2", "y")]
set.seed(1)
t <- system.time(m <- stepFlexmix(y ~ x1 + x2, data = d, k = 3, nrep = 3, verbose = FALSE,
  concomitant = FLXPmultinom(~ x1 + x2), control = list(tolerance = 1e-6, iter.max = 10000)))
cat(t[["elapsed"]], as.numeric(logLik(m)), "\n")
R
}

dmoe_fit() { # file -> "seconds loglik"
  t0=$(now)
  ll=$($DMOE fit --data "$1" --target y --features x1,x2 --k 3 --restarts 3 --tol 1e-6 --max-iter 10000 --threads 1 2>/dev/null |
    awk '/^log-likelihood/ {print $2}')
  t1=$(now)
  echo "$(echo "$t1 - $t0" | bc -l) $ll"
}

row() { # label file
  set -- "$1" "$2" $(dmoe_fit "$2")
  label=$1; file=$2; dt=$3; dll=$4
  if [ "$HAVE_R" = yes ]; then
    set -- $(flexmix_fit "$file")
    ft=$1; fll=$2
    printf '| %s | %.2f s | %.3f s | %.1fx | %.2f | %.2f |\n' "$label" "$ft" "$dt" "$(echo "$ft / $dt" | bc -l)" "$fll" "$dll"
  else
    printf '| %s | - | %.3f s | - | - | %.2f |\n' "$label" "$dt" "$dll"
  fi
}

echo "| data | flexmix | dmoe | ratio | flexmix loglik | dmoe loglik |"
echo "| --- | --- | --- | --- | --- | --- |"
for n in ${@:-20000 200000}; do
  $DMOE simulate --k 3 --d 2 --n "$n" --seed 1 --out "$TMP/sim$n.csv" >/dev/null
  row "simulated K = 3, d = 2, N = $n" "$TMP/sim$n.csv"
done
if [ "$HAVE_R" = yes ] && Rscript -e 'data("CPS1988", package = "AER")' >/dev/null 2>&1; then
  Rscript -e 'data("CPS1988", package = "AER"); d <- CPS1988
    write.csv(data.frame(x1 = d$education, x2 = d$experience, y = log(d$wage)), commandArgs(TRUE)[1], row.names = FALSE)' \
    "$TMP/cps.csv"
  row "CPS1988 (real), N = 28155: log wage ~ education + experience" "$TMP/cps.csv"
fi
