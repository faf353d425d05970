// Package nfqtest provides in-memory fakes of the kernel edges that package
// nfq consumes: Queue (an NFQUEUE handle fed and observed through channels)
// and Injector (records injected packets). With them the dispatcher and its
// workers run in unit tests, without root or a kernel queue, in the spirit of
// wireguard-go's tun/tuntest.
package nfqtest
