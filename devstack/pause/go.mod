module imm.local/devstack/pause

go 1.26.0
