# Sourced by the scripts that start shards (tests/run.sh, fuzz/run.sh).
# glommio registers io_uring buffers: it needs a memlock limit of at least 512 KiB.
memlock=$(ulimit -l)
if [ "$memlock" != "unlimited" ] && [ "$memlock" -lt 512 ]; then
    ulimit -l 512 2>/dev/null || {
        echo "memlock limit is ${memlock} KiB; shardsfu needs at least 512 KiB: run 'ulimit -l 512' as root" >&2
        exit 1
    }
fi
