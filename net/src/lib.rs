//! shardsfu-net: the only crate that makes syscalls or holds `unsafe`.
