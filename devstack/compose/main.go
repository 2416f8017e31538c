// Command imm-compose-config validates and prints a Compose project the way `docker compose config`
// does, with the Compose specification's own Go loader (schema validation, interpolation,
// normalisation), for machines where the Docker Compose plugin is not installed.
//
//	imm-compose-config [-q] <docker-compose.yml>...
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/compose-spec/compose-go/v2/cli"
)

func main() {
	quiet := flag.Bool("q", false, "only validate; print nothing")
	flag.Parse()
	if flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: imm-compose-config [-q] <compose file>...")
		os.Exit(2)
	}
	workdir, err := filepath.Abs(filepath.Dir(flag.Arg(0)))
	if err != nil {
		fail(err)
	}
	options, err := cli.NewProjectOptions(
		flag.Args(),
		cli.WithWorkingDirectory(workdir),
		cli.WithOsEnv,
		cli.WithDotEnv,
		cli.WithName("imm"),
	)
	if err != nil {
		fail(err)
	}
	project, err := options.LoadProject(context.Background())
	if err != nil {
		fail(err)
	}
	if *quiet {
		return
	}
	out, err := project.MarshalYAML()
	if err != nil {
		fail(err)
	}
	os.Stdout.Write(out)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}
