// Package deploy holds what runs tcpcryptd on a fleet: the container image
// recipe (Containerfile) and the Kubernetes manifests (kubernetes/), and
// the checks that keep them true to the daemon.
//
// It is a module of its own so that the daemon's module gains no Kubernetes
// dependency. Its tests decode every manifest strictly into the Kubernetes
// API types (an unknown or misspelt field is an error), then check what
// matters for tcpcryptd: the node's network namespace, exactly the two
// capabilities it needs, the probe on the daemon's /readyz, the ConfigMap
// key mounted where the entrypoint reads its --config file, the control
// socket's directory on the node, arguments the daemon accepts, and memory
// requests that leave the Go runtime room above --memory-limit. See
// docs/fleet.md.
package deploy
