module github.com/edgeless-go/edgeless/functions

go 1.26.8
