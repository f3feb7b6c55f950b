# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_hardal_global_optspecs
    string join \n log-format= h/help V/version
end

function __fish_hardal_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_hardal_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_hardal_using_subcommand
    set -l cmd (__fish_hardal_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c hardal -n "__fish_hardal_needs_command" -l log-format -d 'How log lines are written: `text` for people, `json` for log collectors' -r -f -a "text\t''
json\t''"
complete -c hardal -n "__fish_hardal_needs_command" -s h -l help -d 'Print help'
complete -c hardal -n "__fish_hardal_needs_command" -s V -l version -d 'Print version'
complete -c hardal -n "__fish_hardal_needs_command" -f -a "validate" -d 'Check a configuration: schema, environment variables, templates. Exit 0 when valid'
complete -c hardal -n "__fish_hardal_needs_command" -f -a "render" -d 'Print the request body each destination would send for each event, one per line. Nothing is sent'
complete -c hardal -n "__fish_hardal_needs_command" -f -a "send" -d 'Deliver a file of events (a backfill) to every destination, with progress and a summary. Running the same command again after an interruption continues where it stopped'
complete -c hardal -n "__fish_hardal_needs_command" -f -a "serve" -d 'Run the service: take events over HTTP (`POST /v1/events`), keep them in the backlog, and deliver them to every destination; `/healthz`, `/readyz` and `/metrics` for operators'
complete -c hardal -n "__fish_hardal_needs_command" -f -a "dlq" -d 'The dead letters of `hardal serve`\'s backlog: list, show, replay or purge them (also while the service runs)'
complete -c hardal -n "__fish_hardal_needs_command" -f -a "forget" -d 'Erase a user: suppress their events from now on, remove those waiting in the backlog and its dead letters, and ask each destination to delete them. Through the running `hardal serve` that owns the spool (with the first of `server.privacy_tokens`), else here. Prints the job\'s audit record (JSON)'
complete -c hardal -n "__fish_hardal_needs_command" -f -a "privacy" -d 'The audit records of erasures: when, which destinations confirmed, which failed and why; a digest of the identifiers, never the identifiers. JSON lines'
complete -c hardal -n "__fish_hardal_needs_command" -f -a "tap" -d 'Watch a running `hardal serve`: each event as received, each destination\'s record, and each verdict, as they happen. The token is read from HARDAL_TAP_TOKEN (one of the configuration\'s `server.tap.auth_tokens`)'
complete -c hardal -n "__fish_hardal_needs_command" -f -a "presets" -d 'Print the built-in mappings (presets) of a destination kind'
complete -c hardal -n "__fish_hardal_needs_command" -f -a "list" -d 'List the destination kinds this binary knows'
complete -c hardal -n "__fish_hardal_needs_command" -f -a "schema" -d 'Print the JSON Schema of the configuration file, or of one destination kind'
complete -c hardal -n "__fish_hardal_needs_command" -f -a "completions" -d 'Print the completion script of a shell'
complete -c hardal -n "__fish_hardal_needs_command" -f -a "man" -d 'Write the man pages into a directory'
complete -c hardal -n "__fish_hardal_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c hardal -n "__fish_hardal_using_subcommand validate" -l config -d 'The configuration file (JSON)' -r -F
complete -c hardal -n "__fish_hardal_using_subcommand validate" -l log-format -d 'How log lines are written: `text` for people, `json` for log collectors' -r -f -a "text\t''
json\t''"
complete -c hardal -n "__fish_hardal_using_subcommand validate" -s h -l help -d 'Print help'
complete -c hardal -n "__fish_hardal_using_subcommand render" -l config -d 'The configuration file (JSON)' -r -F
complete -c hardal -n "__fish_hardal_using_subcommand render" -l destination -d 'Render for this destination only' -r
complete -c hardal -n "__fish_hardal_using_subcommand render" -l now -d 'Render as of this time (RFC 3339 or epoch seconds) instead of now: destinations judge their retention against it, e.g. to preview old example events as they were sent' -r
complete -c hardal -n "__fish_hardal_using_subcommand render" -l max-event-bytes -d 'The largest event in bytes; a longer one is reported and skipped unread' -r
complete -c hardal -n "__fish_hardal_using_subcommand render" -l log-format -d 'How log lines are written: `text` for people, `json` for log collectors' -r -f -a "text\t''
json\t''"
complete -c hardal -n "__fish_hardal_using_subcommand render" -s h -l help -d 'Print help'
complete -c hardal -n "__fish_hardal_using_subcommand send" -l config -d 'The configuration file (JSON)' -r -F
complete -c hardal -n "__fish_hardal_using_subcommand send" -l destination -d 'Send to this destination only' -r
complete -c hardal -n "__fish_hardal_using_subcommand send" -l state -d 'The checkpoint store that makes runs resumable (SQLite)' -r -F
complete -c hardal -n "__fish_hardal_using_subcommand send" -l dead-letters -d 'Where events that were not delivered are written, with their reasons (NDJSON)' -r -F
complete -c hardal -n "__fish_hardal_using_subcommand send" -l progress-interval -d 'Seconds between progress lines when stderr is not a terminal (0: none)' -r
complete -c hardal -n "__fish_hardal_using_subcommand send" -l drain-timeout -d 'Seconds in-flight requests may take to finish after Ctrl-C' -r
complete -c hardal -n "__fish_hardal_using_subcommand send" -l workers -d 'Threads that parse and map events (default: one per core)' -r
complete -c hardal -n "__fish_hardal_using_subcommand send" -l max-event-bytes -d 'The largest event (input line) in bytes; a longer line is dead-lettered with its line number and skipped unread' -r
complete -c hardal -n "__fish_hardal_using_subcommand send" -l log-format -d 'How log lines are written: `text` for people, `json` for log collectors' -r -f -a "text\t''
json\t''"
complete -c hardal -n "__fish_hardal_using_subcommand send" -l dry-run -d 'Map and batch every event, but send nothing and write nothing'
complete -c hardal -n "__fish_hardal_using_subcommand send" -l json -d 'Print the final summary as JSON on stdout'
complete -c hardal -n "__fish_hardal_using_subcommand send" -l restart -d 'Forget what earlier runs did with this input (for every destination) and start from the first event'
complete -c hardal -n "__fish_hardal_using_subcommand send" -s h -l help -d 'Print help'
complete -c hardal -n "__fish_hardal_using_subcommand serve" -l config -d 'The configuration file (JSON), with `server` and optionally `backlog`' -r -F
complete -c hardal -n "__fish_hardal_using_subcommand serve" -l drain-timeout -d 'Seconds in-flight requests may take to finish after SIGTERM or Ctrl-C' -r
complete -c hardal -n "__fish_hardal_using_subcommand serve" -l log-format -d 'How log lines are written: `text` for people, `json` for log collectors' -r -f -a "text\t''
json\t''"
complete -c hardal -n "__fish_hardal_using_subcommand serve" -l no-ingest -d 'Only deliver: `POST /v1/events` answers 503 and `/readyz` is never ready (a worker on a shared NATS backlog)'
complete -c hardal -n "__fish_hardal_using_subcommand serve" -l no-deliver -d 'Only accept events into the backlog; other nodes deliver them (NATS backlog)'
complete -c hardal -n "__fish_hardal_using_subcommand serve" -s h -l help -d 'Print help'
complete -c hardal -n "__fish_hardal_using_subcommand dlq; and not __fish_seen_subcommand_from list show replay purge help" -l log-format -d 'How log lines are written: `text` for people, `json` for log collectors' -r -f -a "text\t''
json\t''"
complete -c hardal -n "__fish_hardal_using_subcommand dlq; and not __fish_seen_subcommand_from list show replay purge help" -s h -l help -d 'Print help'
complete -c hardal -n "__fish_hardal_using_subcommand dlq; and not __fish_seen_subcommand_from list show replay purge help" -f -a "list" -d 'List dead letters, one line each (id, destination, time, ending, first reason)'
complete -c hardal -n "__fish_hardal_using_subcommand dlq; and not __fish_seen_subcommand_from list show replay purge help" -f -a "show" -d 'Print one dead letter (its event and every reason) as JSON'
complete -c hardal -n "__fish_hardal_using_subcommand dlq; and not __fish_seen_subcommand_from list show replay purge help" -f -a "replay" -d 'Put dead letters back in line for their destination'
complete -c hardal -n "__fish_hardal_using_subcommand dlq; and not __fish_seen_subcommand_from list show replay purge help" -f -a "purge" -d 'Delete dead letters for good'
complete -c hardal -n "__fish_hardal_using_subcommand dlq; and not __fish_seen_subcommand_from list show replay purge help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c hardal -n "__fish_hardal_using_subcommand dlq; and __fish_seen_subcommand_from list" -l config -d 'The configuration file (JSON) whose backlog holds the dead letters' -r -F
complete -c hardal -n "__fish_hardal_using_subcommand dlq; and __fish_seen_subcommand_from list" -l destination -d 'Only this destination\'s' -r
complete -c hardal -n "__fish_hardal_using_subcommand dlq; and __fish_seen_subcommand_from list" -l reason -d 'Only those with a reason containing this text' -r
complete -c hardal -n "__fish_hardal_using_subcommand dlq; and __fish_seen_subcommand_from list" -l since -d 'Only those dead-lettered since this time (RFC 3339, or a span ago: 30m, 2h, 7d)' -r
complete -c hardal -n "__fish_hardal_using_subcommand dlq; and __fish_seen_subcommand_from list" -l until -d 'Only those dead-lettered until this time (RFC 3339, or a span ago)' -r
complete -c hardal -n "__fish_hardal_using_subcommand dlq; and __fish_seen_subcommand_from list" -l limit -d 'At most this many' -r
complete -c hardal -n "__fish_hardal_using_subcommand dlq; and __fish_seen_subcommand_from list" -l log-format -d 'How log lines are written: `text` for people, `json` for log collectors' -r -f -a "text\t''
json\t''"
complete -c hardal -n "__fish_hardal_using_subcommand dlq; and __fish_seen_subcommand_from list" -l json -d 'Print them as a JSON array on stdout, with the events'
complete -c hardal -n "__fish_hardal_using_subcommand dlq; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c hardal -n "__fish_hardal_using_subcommand dlq; and __fish_seen_subcommand_from show" -l config -d 'The configuration file (JSON)' -r -F
complete -c hardal -n "__fish_hardal_using_subcommand dlq; and __fish_seen_subcommand_from show" -l log-format -d 'How log lines are written: `text` for people, `json` for log collectors' -r -f -a "text\t''
json\t''"
complete -c hardal -n "__fish_hardal_using_subcommand dlq; and __fish_seen_subcommand_from show" -s h -l help -d 'Print help'
complete -c hardal -n "__fish_hardal_using_subcommand dlq; and __fish_seen_subcommand_from replay" -l config -d 'The configuration file (JSON) whose backlog holds the dead letters' -r -F
complete -c hardal -n "__fish_hardal_using_subcommand dlq; and __fish_seen_subcommand_from replay" -l destination -d 'Only this destination\'s' -r
complete -c hardal -n "__fish_hardal_using_subcommand dlq; and __fish_seen_subcommand_from replay" -l reason -d 'Only those with a reason containing this text' -r
complete -c hardal -n "__fish_hardal_using_subcommand dlq; and __fish_seen_subcommand_from replay" -l since -d 'Only those dead-lettered since this time (RFC 3339, or a span ago: 30m, 2h, 7d)' -r
complete -c hardal -n "__fish_hardal_using_subcommand dlq; and __fish_seen_subcommand_from replay" -l until -d 'Only those dead-lettered until this time (RFC 3339, or a span ago)' -r
complete -c hardal -n "__fish_hardal_using_subcommand dlq; and __fish_seen_subcommand_from replay" -l id -d 'Only this one' -r
complete -c hardal -n "__fish_hardal_using_subcommand dlq; and __fish_seen_subcommand_from replay" -l log-format -d 'How log lines are written: `text` for people, `json` for log collectors' -r -f -a "text\t''
json\t''"
complete -c hardal -n "__fish_hardal_using_subcommand dlq; and __fish_seen_subcommand_from replay" -s h -l help -d 'Print help'
complete -c hardal -n "__fish_hardal_using_subcommand dlq; and __fish_seen_subcommand_from purge" -l config -d 'The configuration file (JSON) whose backlog holds the dead letters' -r -F
complete -c hardal -n "__fish_hardal_using_subcommand dlq; and __fish_seen_subcommand_from purge" -l destination -d 'Only this destination\'s' -r
complete -c hardal -n "__fish_hardal_using_subcommand dlq; and __fish_seen_subcommand_from purge" -l reason -d 'Only those with a reason containing this text' -r
complete -c hardal -n "__fish_hardal_using_subcommand dlq; and __fish_seen_subcommand_from purge" -l since -d 'Only those dead-lettered since this time (RFC 3339, or a span ago: 30m, 2h, 7d)' -r
complete -c hardal -n "__fish_hardal_using_subcommand dlq; and __fish_seen_subcommand_from purge" -l until -d 'Only those dead-lettered until this time (RFC 3339, or a span ago)' -r
complete -c hardal -n "__fish_hardal_using_subcommand dlq; and __fish_seen_subcommand_from purge" -l id -d 'Only this one' -r
complete -c hardal -n "__fish_hardal_using_subcommand dlq; and __fish_seen_subcommand_from purge" -l log-format -d 'How log lines are written: `text` for people, `json` for log collectors' -r -f -a "text\t''
json\t''"
complete -c hardal -n "__fish_hardal_using_subcommand dlq; and __fish_seen_subcommand_from purge" -s h -l help -d 'Print help'
complete -c hardal -n "__fish_hardal_using_subcommand dlq; and __fish_seen_subcommand_from help" -f -a "list" -d 'List dead letters, one line each (id, destination, time, ending, first reason)'
complete -c hardal -n "__fish_hardal_using_subcommand dlq; and __fish_seen_subcommand_from help" -f -a "show" -d 'Print one dead letter (its event and every reason) as JSON'
complete -c hardal -n "__fish_hardal_using_subcommand dlq; and __fish_seen_subcommand_from help" -f -a "replay" -d 'Put dead letters back in line for their destination'
complete -c hardal -n "__fish_hardal_using_subcommand dlq; and __fish_seen_subcommand_from help" -f -a "purge" -d 'Delete dead letters for good'
complete -c hardal -n "__fish_hardal_using_subcommand dlq; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c hardal -n "__fish_hardal_using_subcommand forget" -l config -d 'The configuration file (JSON)' -r -F
complete -c hardal -n "__fish_hardal_using_subcommand forget" -l user-id -d 'The user\'s `user_id` (repeatable, as every identifier)' -r
complete -c hardal -n "__fish_hardal_using_subcommand forget" -l email -d 'The user\'s e-mail address' -r
complete -c hardal -n "__fish_hardal_using_subcommand forget" -l phone -d 'The user\'s phone number' -r
complete -c hardal -n "__fish_hardal_using_subcommand forget" -l custom -d 'A custom identifier: an event path and its value, e.g. `properties.customer_no=42`' -r
complete -c hardal -n "__fish_hardal_using_subcommand forget" -l dead-letters -d 'A dead-letter file of `hardal send` (a backfill) to rewrite without the user\'s letters (repeatable; not while that `hardal send` runs). The backfill\'s input is yours: take the user\'s lines out of it before sending it again' -r -F
complete -c hardal -n "__fish_hardal_using_subcommand forget" -l log-format -d 'How log lines are written: `text` for people, `json` for log collectors' -r -f -a "text\t''
json\t''"
complete -c hardal -n "__fish_hardal_using_subcommand forget" -l wait -d 'When a running service carries the job out, wait until it is complete'
complete -c hardal -n "__fish_hardal_using_subcommand forget" -s h -l help -d 'Print help'
complete -c hardal -n "__fish_hardal_using_subcommand privacy; and not __fish_seen_subcommand_from list show help" -l log-format -d 'How log lines are written: `text` for people, `json` for log collectors' -r -f -a "text\t''
json\t''"
complete -c hardal -n "__fish_hardal_using_subcommand privacy; and not __fish_seen_subcommand_from list show help" -s h -l help -d 'Print help'
complete -c hardal -n "__fish_hardal_using_subcommand privacy; and not __fish_seen_subcommand_from list show help" -f -a "list" -d 'Every erasure job, oldest first'
complete -c hardal -n "__fish_hardal_using_subcommand privacy; and not __fish_seen_subcommand_from list show help" -f -a "show" -d 'One erasure job'
complete -c hardal -n "__fish_hardal_using_subcommand privacy; and not __fish_seen_subcommand_from list show help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c hardal -n "__fish_hardal_using_subcommand privacy; and __fish_seen_subcommand_from list" -l config -d 'The configuration file (JSON)' -r -F
complete -c hardal -n "__fish_hardal_using_subcommand privacy; and __fish_seen_subcommand_from list" -l log-format -d 'How log lines are written: `text` for people, `json` for log collectors' -r -f -a "text\t''
json\t''"
complete -c hardal -n "__fish_hardal_using_subcommand privacy; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c hardal -n "__fish_hardal_using_subcommand privacy; and __fish_seen_subcommand_from show" -l config -d 'The configuration file (JSON)' -r -F
complete -c hardal -n "__fish_hardal_using_subcommand privacy; and __fish_seen_subcommand_from show" -l log-format -d 'How log lines are written: `text` for people, `json` for log collectors' -r -f -a "text\t''
json\t''"
complete -c hardal -n "__fish_hardal_using_subcommand privacy; and __fish_seen_subcommand_from show" -s h -l help -d 'Print help'
complete -c hardal -n "__fish_hardal_using_subcommand privacy; and __fish_seen_subcommand_from help" -f -a "list" -d 'Every erasure job, oldest first'
complete -c hardal -n "__fish_hardal_using_subcommand privacy; and __fish_seen_subcommand_from help" -f -a "show" -d 'One erasure job'
complete -c hardal -n "__fish_hardal_using_subcommand privacy; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c hardal -n "__fish_hardal_using_subcommand tap" -l url -d 'The service\'s tap listener (`server.tap.listen`)' -r
complete -c hardal -n "__fish_hardal_using_subcommand tap" -l destination -d 'Only this destination\'s records and verdicts (repeatable)' -r
complete -c hardal -n "__fish_hardal_using_subcommand tap" -l event-name -d 'Only events with this `event_name` (repeatable)' -r
complete -c hardal -n "__fish_hardal_using_subcommand tap" -l user -d 'Only this user\'s events: `user_id`, else `user.email` (repeatable)' -r
complete -c hardal -n "__fish_hardal_using_subcommand tap" -l sample -d 'Only this share of events, e.g. 0.1 (each event shown whole or not at all)' -r
complete -c hardal -n "__fish_hardal_using_subcommand tap" -l log-format -d 'How log lines are written: `text` for people, `json` for log collectors' -r -f -a "text\t''
json\t''"
complete -c hardal -n "__fish_hardal_using_subcommand tap" -l json -d 'Print the service\'s NDJSON lines as they come, rather than readable lines'
complete -c hardal -n "__fish_hardal_using_subcommand tap" -s h -l help -d 'Print help'
complete -c hardal -n "__fish_hardal_using_subcommand presets" -l kind -d 'The destination kind, e.g. `insider`' -r
complete -c hardal -n "__fish_hardal_using_subcommand presets" -l log-format -d 'How log lines are written: `text` for people, `json` for log collectors' -r -f -a "text\t''
json\t''"
complete -c hardal -n "__fish_hardal_using_subcommand presets" -s h -l help -d 'Print help'
complete -c hardal -n "__fish_hardal_using_subcommand list" -l config -r -F
complete -c hardal -n "__fish_hardal_using_subcommand list" -l log-format -d 'How log lines are written: `text` for people, `json` for log collectors' -r -f -a "text\t''
json\t''"
complete -c hardal -n "__fish_hardal_using_subcommand list" -s h -l help -d 'Print help'
complete -c hardal -n "__fish_hardal_using_subcommand schema" -l config -r -F
complete -c hardal -n "__fish_hardal_using_subcommand schema" -l kind -d 'Print the schema of this destination kind only' -r
complete -c hardal -n "__fish_hardal_using_subcommand schema" -l log-format -d 'How log lines are written: `text` for people, `json` for log collectors' -r -f -a "text\t''
json\t''"
complete -c hardal -n "__fish_hardal_using_subcommand schema" -s h -l help -d 'Print help'
complete -c hardal -n "__fish_hardal_using_subcommand completions" -l log-format -d 'How log lines are written: `text` for people, `json` for log collectors' -r -f -a "text\t''
json\t''"
complete -c hardal -n "__fish_hardal_using_subcommand completions" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c hardal -n "__fish_hardal_using_subcommand man" -l log-format -d 'How log lines are written: `text` for people, `json` for log collectors' -r -f -a "text\t''
json\t''"
complete -c hardal -n "__fish_hardal_using_subcommand man" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c hardal -n "__fish_hardal_using_subcommand help; and not __fish_seen_subcommand_from validate render send serve dlq forget privacy tap presets list schema completions man help" -f -a "validate" -d 'Check a configuration: schema, environment variables, templates. Exit 0 when valid'
complete -c hardal -n "__fish_hardal_using_subcommand help; and not __fish_seen_subcommand_from validate render send serve dlq forget privacy tap presets list schema completions man help" -f -a "render" -d 'Print the request body each destination would send for each event, one per line. Nothing is sent'
complete -c hardal -n "__fish_hardal_using_subcommand help; and not __fish_seen_subcommand_from validate render send serve dlq forget privacy tap presets list schema completions man help" -f -a "send" -d 'Deliver a file of events (a backfill) to every destination, with progress and a summary. Running the same command again after an interruption continues where it stopped'
complete -c hardal -n "__fish_hardal_using_subcommand help; and not __fish_seen_subcommand_from validate render send serve dlq forget privacy tap presets list schema completions man help" -f -a "serve" -d 'Run the service: take events over HTTP (`POST /v1/events`), keep them in the backlog, and deliver them to every destination; `/healthz`, `/readyz` and `/metrics` for operators'
complete -c hardal -n "__fish_hardal_using_subcommand help; and not __fish_seen_subcommand_from validate render send serve dlq forget privacy tap presets list schema completions man help" -f -a "dlq" -d 'The dead letters of `hardal serve`\'s backlog: list, show, replay or purge them (also while the service runs)'
complete -c hardal -n "__fish_hardal_using_subcommand help; and not __fish_seen_subcommand_from validate render send serve dlq forget privacy tap presets list schema completions man help" -f -a "forget" -d 'Erase a user: suppress their events from now on, remove those waiting in the backlog and its dead letters, and ask each destination to delete them. Through the running `hardal serve` that owns the spool (with the first of `server.privacy_tokens`), else here. Prints the job\'s audit record (JSON)'
complete -c hardal -n "__fish_hardal_using_subcommand help; and not __fish_seen_subcommand_from validate render send serve dlq forget privacy tap presets list schema completions man help" -f -a "privacy" -d 'The audit records of erasures: when, which destinations confirmed, which failed and why; a digest of the identifiers, never the identifiers. JSON lines'
complete -c hardal -n "__fish_hardal_using_subcommand help; and not __fish_seen_subcommand_from validate render send serve dlq forget privacy tap presets list schema completions man help" -f -a "tap" -d 'Watch a running `hardal serve`: each event as received, each destination\'s record, and each verdict, as they happen. The token is read from HARDAL_TAP_TOKEN (one of the configuration\'s `server.tap.auth_tokens`)'
complete -c hardal -n "__fish_hardal_using_subcommand help; and not __fish_seen_subcommand_from validate render send serve dlq forget privacy tap presets list schema completions man help" -f -a "presets" -d 'Print the built-in mappings (presets) of a destination kind'
complete -c hardal -n "__fish_hardal_using_subcommand help; and not __fish_seen_subcommand_from validate render send serve dlq forget privacy tap presets list schema completions man help" -f -a "list" -d 'List the destination kinds this binary knows'
complete -c hardal -n "__fish_hardal_using_subcommand help; and not __fish_seen_subcommand_from validate render send serve dlq forget privacy tap presets list schema completions man help" -f -a "schema" -d 'Print the JSON Schema of the configuration file, or of one destination kind'
complete -c hardal -n "__fish_hardal_using_subcommand help; and not __fish_seen_subcommand_from validate render send serve dlq forget privacy tap presets list schema completions man help" -f -a "completions" -d 'Print the completion script of a shell'
complete -c hardal -n "__fish_hardal_using_subcommand help; and not __fish_seen_subcommand_from validate render send serve dlq forget privacy tap presets list schema completions man help" -f -a "man" -d 'Write the man pages into a directory'
complete -c hardal -n "__fish_hardal_using_subcommand help; and not __fish_seen_subcommand_from validate render send serve dlq forget privacy tap presets list schema completions man help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c hardal -n "__fish_hardal_using_subcommand help; and __fish_seen_subcommand_from dlq" -f -a "list" -d 'List dead letters, one line each (id, destination, time, ending, first reason)'
complete -c hardal -n "__fish_hardal_using_subcommand help; and __fish_seen_subcommand_from dlq" -f -a "show" -d 'Print one dead letter (its event and every reason) as JSON'
complete -c hardal -n "__fish_hardal_using_subcommand help; and __fish_seen_subcommand_from dlq" -f -a "replay" -d 'Put dead letters back in line for their destination'
complete -c hardal -n "__fish_hardal_using_subcommand help; and __fish_seen_subcommand_from dlq" -f -a "purge" -d 'Delete dead letters for good'
complete -c hardal -n "__fish_hardal_using_subcommand help; and __fish_seen_subcommand_from privacy" -f -a "list" -d 'Every erasure job, oldest first'
complete -c hardal -n "__fish_hardal_using_subcommand help; and __fish_seen_subcommand_from privacy" -f -a "show" -d 'One erasure job'
