module spanbridge/bench

go 1.22
