module github.com/valkeyops/secure

go 1.25.0

require (
	github.com/goccy/go-yaml v1.19.2
	github.com/pkg/sftp v1.13.12
	github.com/stretchr/testify v1.12.1
	github.com/valkey-io/valkey-go v1.0.79
	golang.org/x/crypto v0.54.0
	golang.org/x/sys v0.47.0
)

require (
	github.com/kr/fs v0.1.0 // indirect
	go.yaml.in/yaml/v3 v3.0.5 // indirect
)
