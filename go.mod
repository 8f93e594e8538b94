module github.com/tapgate/tapgate

go 1.26.8

require (

	github.com/DataDog/sketches-go v1.4.8
	github.com/bahlo/generic-list-go v0.2.0
	github.com/buger/jsonparser v1.1.2
	github.com/cpuguy83/go-md2man/v2 v2.0.7
	github.com/hashicorp/errwrap v1.0.0
	github.com/hashicorp/go-multierror v1.1.1
	github.com/invopop/jsonschema v0.14.0
	github.com/pb33f/ordered-map/v2 v2.3.1
	github.com/russross/blackfriday/v2 v2.1.0
	github.com/sethvargo/go-githubactions v1.4.0
	github.com/urfave/cli/v2 v2.27.7
	github.com/xrash/smetrics v0.0.0-20240521201337-686a1a2994c1
	go.yaml.in/yaml/v3 v3.0.6
	go.yaml.in/yaml/v4 v4.0.0-rc.2
	golang.org/x/net v0.60.0
	golang.org/x/sys v0.50.0
	golang.org/x/term v0.48.0
	golang.org/x/text v0.42.0
	google.golang.org/genproto/googleapis/rpc v0.0.0-20260817212433-ac3dfec99bb1
	google.golang.org/grpc v1.85.0
	google.golang.org/protobuf v1.36.12
	k8s.io/client-go v0.37.2

)
