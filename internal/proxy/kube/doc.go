// Package kube understands the Kubernetes API at the protocol level for
// warden's Kubernetes targets.
//
// It owns four things and nothing else:
//
//   - request facts: [Parse] turns a method, path and query into the same
//     [RequestInfo] the API server's RequestInfoFactory computes (verb, API
//     group, resource, subresource, namespace, name), refusing paths it cannot
//     map without guessing;
//   - refusals in the protocol's own language: [Status] builds a metav1.Status
//     body so kubectl prints warden's reason;
//   - streaming sessions: [Stream] describes exec, attach and port-forward
//     requests (their command, container and ports) for policy and audit;
//   - Secret masking of responses: [SecretMasker] masks the data and
//     stringData values of every Secret in a JSON or YAML body or a watch
//     stream, and [AcceptJSON]/[MaskableType] keep responses in a form it can
//     inspect (never protobuf or CBOR).
//
// The package knows nothing about policy syntax, configuration, sockets or the
// HTTP proxy that calls it: the caller decides what a RequestInfo may do and
// refuses whatever this package reports as an error (fail closed).
package kube
