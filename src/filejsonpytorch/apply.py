"""The application server: `python -m filejsonpytorch.apply MODELPREFIX [--metafile M] [--cuda B]`.

The GATE host writes one JSON request per line on our stdin (an instance's feature
values, or a sequence of them) and reads exactly one JSON response line from our stdout.
stdout is therefore taken over before anything else is imported: the real stdout is kept
for protocol lines only, and both `sys.stdout` and file descriptor 1 are pointed at stderr,
so a print or a library warning (even from C code) can never desynchronise the host.
"""

import json
import logging
import math
import os
import sys

log = logging.getLogger("filejsonpytorch")
BOM = "\ufeff".encode("utf-8")
MAX_ERROR_CHARS = 1000
NOT_FINITE = "the model's output is not a finite number (are the numeric feature values in range?)"


def protect_stdout():
    """-> a text stream on the real stdout; everything else written to stdout goes to stderr."""
    protocol = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8", newline="\n")
    sys.stdout.flush()
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    sys.stdout = sys.stderr
    return protocol


def main(argv=None):
    protocol = protect_stdout()
    from .logs import run_main

    return run_main(lambda: start(argv, sys.stdin.buffer, protocol), argv)


def start(argv, requests, protocol):
    """Loads the model and serves it. When it cannot be loaded, the message is logged and
    then answered to every request until EOF: the host shows an error answer to the user,
    while an exit would only make it fail later with an exception that says nothing."""
    from .config import apply_parser
    from .logs import failure_message, setup_logging

    try:
        args = apply_parser().parse_args(argv)
        setup_logging(args.debug)
        server = Server.load(args.modelprefix, args.cuda)
    except Exception as e:
        message = failure_message(e, debug="--debug" in (sys.argv[1:] if argv is None else argv))
        print(message, file=sys.stderr)
        return serve_error(requests, protocol, message.removeprefix("error: "))
    return server.serve(requests, protocol)


def serve_error(requests, protocol, message):
    """Answers every request line with the same error until EOF or `STOP`."""
    answer = error_response(f"the model cannot be served: {message}") + "\n"
    for raw in requests:
        if _clean(raw) == b"STOP":
            break
        if not _write(protocol, answer):
            break
    return 0


def _reject_constant(name):
    raise ValueError(f"{name} is not a valid JSON number")


DECODER = json.JSONDecoder(parse_constant=_reject_constant)


class Server:
    """A loaded model and everything prepared for answering requests fast."""

    def __init__(self, schema, encoder, network, device, stacked=None):
        """`stacked`: `network` as a StackedMLP, which then answers (see `load`)."""
        import torch

        from .batches import request_batch, to_device

        self.torch = torch
        self.request_batch = request_batch
        self.to_device = to_device
        self.schema = schema
        self.encoder = encoder
        self.network = network
        self.stacked = stacked
        self.device = device
        self.labels = schema.labels
        self.labels_json = json.dumps(schema.labels)
        self.is_sequence = schema.is_sequence
        self.regression = schema.target_kind == "numeric"
        # a sequence span with no elements: the host needs an ok answer with empty lists
        self.empty_sequence_answer = '{"status":"ok","output":[],"conf":[],"dist":[],"labels":%s}' % self.labels_json

    @classmethod
    def load(cls, prefix, cuda=False):
        import torch

        from . import lfdata, model_io
        from .errors import EnvironmentProblem
        from .modules.encoder import InputEncoder
        from .stacked import stack

        if cuda and not torch.cuda.is_available():
            raise EnvironmentProblem("--cuda true: no usable CUDA GPU found")
        device = torch.device("cuda" if cuda else "cpu")
        if device.type == "cpu":
            torch.set_num_threads(1)
        model = model_io.read_model(prefix, device)
        network = model.network.eval()
        stacked = stack(network)
        if stacked is None:
            for module in network.modules():
                if isinstance(module, InputEncoder):
                    module.memoise()
        return cls(model.schema, lfdata.Encoder(model.schema, model.vocabs), network, device, stacked)

    def serve(self, requests, protocol):
        """Answers every request line with one response line until EOF or `STOP`."""
        with self.torch.inference_mode():
            for raw in requests:
                line = _clean(raw)
                if line == b"STOP":
                    break
                if not _write(protocol, self.answer(line) + "\n"):
                    break
        return 0

    def answer(self, line):
        """-> one JSON response (no newline) for one request line (bytes); never raises."""
        line = _clean(line)
        if not line:
            return error_response("empty request line")
        try:
            request = DECODER.decode(decode_request(line))
        except RecursionError:
            return error_response("the request is nested too deeply")
        except json.JSONDecodeError as e:
            return error_response(f"not valid JSON ({e})")
        except ValueError as e:  # NaN/Infinity literals, integers with too many digits
            return error_response(f"not valid JSON ({e})")
        try:
            return self.predict(request)
        except ValueError as e:
            return error_response(str(e))
        except OverflowError:
            return error_response("a number in the request is too large")
        except Exception as e:  # anything else must not end the service
            log.warning("request failed: %s: %s", type(e).__name__, e)
            return error_response(f"cannot answer this request ({type(e).__name__}: {e})")

    def predict(self, request):
        with self.torch.inference_mode():
            return self._predict(request)

    def _predict(self, request):
        encoded = self.encode(request)
        if self.stacked is not None:
            answer = self.stacked.answer(encoded)
            return self.value_response(answer) if self.regression else self.class_response(*answer)
        if self.is_sequence and not encoded:
            return self.empty_sequence_answer
        batch = self.request_batch(encoded, self.is_sequence)
        if self.device.type != "cpu":
            batch = self.to_device(batch, self.device)
        scores = self.network(batch)
        predicted, probabilities = self.network.predict(scores, batch)
        probabilities = self.network.calibrated(probabilities)
        if self.regression:
            return self.value_response(float(predicted[0]))
        if self.is_sequence:
            return self.sequence_response(predicted[0], probabilities[0])
        return self.class_response(int(predicted[0]), probabilities[0].tolist())

    def encode(self, request):
        if not self.is_sequence:
            try:
                return self.encoder.encode(request)
            except ValueError as e:
                if isinstance(request, list) and request and all(isinstance(v, list) for v in request):
                    raise ValueError(f"{e} (this model classifies single instances: was a sequence sent?)") from None
                raise
        if not isinstance(request, list):
            raise ValueError("expected a sequence: a list of element feature lists")
        encoded = []
        for position, element in enumerate(request):
            if not isinstance(element, list):
                raise ValueError(f"element {position}: expected a list of feature values (this model tags sequences)")
            try:
                encoded.append(self.encoder.encode(element))
            except ValueError as e:
                raise ValueError(f"element {position}: {e}") from None
        return encoded

    def value_response(self, standardised):
        value = standardised * self.schema.target_std + self.schema.target_mean
        if not math.isfinite(value):
            raise ValueError(NOT_FINITE)
        return json.dumps({"status": "ok", "output": value})

    def class_response(self, index, dist):
        if not math.isfinite(sum(dist)):
            raise ValueError(NOT_FINITE)
        return ('{"status":"ok","output":%s,"conf":%r,"dist":%s,"labels":%s}'
                % (json.dumps(self.labels[index]), dist[index], json.dumps(dist), self.labels_json))

    def sequence_response(self, indices, probabilities):
        dist = probabilities.tolist()
        if not math.isfinite(sum(map(sum, dist))):
            raise ValueError(NOT_FINITE)
        indices = indices.tolist()
        output = [self.labels[i] for i in indices]
        conf = [d[i] for d, i in zip(dist, indices)]
        return ('{"status":"ok","output":%s,"conf":%s,"dist":%s,"labels":%s}'
                % (json.dumps(output), json.dumps(conf), json.dumps(dist), self.labels_json))


def error_response(message):
    if len(message) > MAX_ERROR_CHARS:
        message = message[:MAX_ERROR_CHARS] + "..."
    return json.dumps({"status": "error", "error": message})


def decode_request(line):
    """The request's text: UTF-8, or windows-1252 for a line that is not valid UTF-8 (a
    Windows JVM writes requests in its default charset)."""
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError:
        return line.decode("cp1252", errors="replace")


def _write(protocol, text):
    """Writes one answer line; False when the host has closed our stdout."""
    try:
        protocol.write(text)
        protocol.flush()
        return True
    except BrokenPipeError:
        log.info("the host closed our stdout: stopping")
        _close_quietly(protocol)
        return False


def _clean(raw):
    """A request line without its line end, surrounding whitespace and a leading BOM."""
    line = raw.strip()
    if line.startswith(BOM):
        line = line[len(BOM):].lstrip()
    return line


def _close_quietly(stream):
    try:
        stream.close()
    except OSError:
        pass


if __name__ == "__main__":
    sys.exit(main())
