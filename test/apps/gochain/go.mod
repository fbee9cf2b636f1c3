module example.com/gochain

go 1.22
