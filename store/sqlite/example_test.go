package sqlite_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/imxproject/imx/addr"
	"github.com/imxproject/imx/store"
	"github.com/imxproject/imx/store/sqlite"
	"github.com/imxproject/imx/wire"
)

func Example() {
	dir, err := os.MkdirTemp("", "imx-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "imx.db"), sqlite.Options{
		Password: store.PasswordParams{Memory: 64, Time: 1, Threads: 1}, // cheap, for the example
	})
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()

	alice := addr.MustParse("alice@alpha.example")
	if err := st.CreateAccount(ctx, alice, "correct horse"); err != nil {
		log.Fatal(err)
	}
	fmt.Println(st.Authenticate(ctx, alice, "correct horse"))
	fmt.Println(errors.Is(st.Authenticate(ctx, alice, "wrong"), store.ErrBadPassword))

	// A message from beta.example arrives twice with the same id.
	now := time.Now()
	for range 2 {
		state, prior, err := st.Claim(ctx, "beta.example", []byte("id-1"), now)
		if err != nil {
			log.Fatal(err)
		}
		switch state {
		case store.Claimed:
			// Deliver, then record the outcome.
			err = st.SettleClaim(ctx, "beta.example", []byte("id-1"), store.Result{Status: wire.StatusDelivered, Count: 1})
			fmt.Println("delivered", err)
		case store.Settled:
			fmt.Println("repeat answered with", prior.Status.String(), prior.Count)
		}
	}
	// Output:
	// <nil>
	// true
	// delivered <nil>
	// repeat answered with delivered 1
}
