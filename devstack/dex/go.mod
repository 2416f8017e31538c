module imm.local/devstack/dex

go 1.25

tool github.com/dexidp/dex/cmd/dex
