module example.com/demo/backend

go 1.22
