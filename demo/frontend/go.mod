module example.com/demo/frontend

go 1.22
