#!/bin/sh
# install-config.sh CONFDIR SAMPLE - meson's install script: put the sample
# configuration in place only if there is none yet (an upgrade keeps the
# operator's edits). Paths are absolute; DESTDIR is honoured.
set -eu
dir=${DESTDIR:-}$1
sample=${DESTDIR:-}$2
mkdir -p "$dir"
if [ -e "$dir/tlsrptd.conf" ]; then
	echo "install-config.sh: keeping $dir/tlsrptd.conf (the new sample is $sample)"
else
	install -m 0644 "$sample" "$dir/tlsrptd.conf"
fi
