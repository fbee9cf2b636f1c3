module example.com/demo/loadgen

go 1.22
