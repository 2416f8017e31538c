// Command imm-kube is the devstack's Kubernetes control plane in one multi-call binary:
// etcd, kube-apiserver, kube-controller-manager and kube-scheduler, each the upstream
// component's own command, chosen by the first argument. One binary means one link step
// and one cached artefact for the devstack to reuse across starts and clean clones.
package main

import (
	"fmt"
	"os"

	_ "time/tzdata" // CronJob time zones, as in the upstream kube-apiserver main

	"github.com/spf13/cobra"
	"go.etcd.io/etcd/server/v3/etcdmain"
	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	_ "k8s.io/component-base/metrics/prometheus/version"
	apiserver "k8s.io/kubernetes/cmd/kube-apiserver/app"
	controllermanager "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	scheduler "k8s.io/kubernetes/cmd/kube-scheduler/app"
)

func runCobra(cmd *cobra.Command, args []string) int {
	cmd.SetArgs(args)
	return cli.Run(cmd)
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: imm-kube etcd|kube-apiserver|kube-controller-manager|kube-scheduler [flags]")
		os.Exit(2)
	}
	sub, args := os.Args[1], os.Args[2:]
	switch sub {
	case "etcd":
		// etcdmain.Main reads its flags from the slice it is given, skipping the program name.
		etcdmain.Main(append([]string{"etcd"}, args...))
	case "kube-apiserver":
		os.Exit(runCobra(apiserver.NewAPIServerCommand(), args))
	case "kube-controller-manager":
		os.Exit(runCobra(controllermanager.NewControllerManagerCommand(), args))
	case "kube-scheduler":
		os.Exit(runCobra(scheduler.NewSchedulerCommand(), args))
	case "version":
		fmt.Println("kubernetes v1.37.2, etcd v3.7.0")
	default:
		fmt.Fprintf(os.Stderr, "imm-kube: unknown component %q\n", sub)
		os.Exit(2)
	}
}
