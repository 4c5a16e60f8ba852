//! The interactive shell: `zk` without a command. Every command of the command line, with
//! line editing, history (`~/.zk_history`) and completion of command names and of paths,
//! read from the server as you type.

use std::borrow::Cow;

use anyhow::Result;
use clap::{CommandFactory, Parser};
use rustyline::completion::{Completer, Pair};
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::FileHistory;
use rustyline::validate::Validator;
use rustyline::{Context, Editor, Helper};
use tokio::runtime::Runtime;
use zk_tokio::Client;

use crate::output::{describe_error, exit_code};
use crate::{Cli, Global, Outcome, commands, connect};

struct Completion<'a> {
    runtime: &'a Runtime,
    client: Client,
    commands: Vec<String>,
}

impl Completer for Completion<'_> {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let before = &line[..pos];
        let start = before.rfind(char::is_whitespace).map_or(0, |i| i + 1);
        let word = &before[start..];
        if start == 0 {
            let names = self
                .commands
                .iter()
                .filter(|c| c.starts_with(word))
                .map(|c| Pair {
                    display: c.clone(),
                    replacement: format!("{c} "),
                })
                .collect();
            return Ok((0, names));
        }
        if !word.starts_with('/') {
            return Ok((pos, Vec::new()));
        }
        let (dir, prefix) = match word.rfind('/') {
            Some(0) => ("/", &word[1..]),
            Some(i) => (&word[..i], &word[i + 1..]),
            None => return Ok((pos, Vec::new())),
        };
        let children = self
            .runtime
            .block_on(self.client.get_children(dir))
            .unwrap_or_default();
        let mut found: Vec<Pair> = children
            .into_iter()
            .filter(|c| c.starts_with(prefix))
            .map(|c| {
                let full = if dir == "/" {
                    format!("/{c}")
                } else {
                    format!("{dir}/{c}")
                };
                Pair {
                    display: c,
                    replacement: full,
                }
            })
            .collect();
        found.sort_by(|a, b| a.display.cmp(&b.display));
        Ok((start, found))
    }
}

impl Hinter for Completion<'_> {
    type Hint = String;
}

impl Highlighter for Completion<'_> {
    fn highlight_prompt<'b, 's: 'b, 'p: 'b>(
        &'s self,
        prompt: &'p str,
        _default: bool,
    ) -> Cow<'b, str> {
        Cow::Borrowed(prompt)
    }
}

impl Validator for Completion<'_> {}

impl Helper for Completion<'_> {}

fn history_file() -> Option<std::path::PathBuf> {
    std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".zk_history"))
}

/// Reads commands until `exit`, `quit` or end of input.
pub fn run(runtime: &Runtime, g: &Global) -> Result<Outcome> {
    let client = runtime.block_on(connect::connect(g))?;
    eprintln!(
        "connected to {} (session {:#x}); `help` lists the commands, Ctrl-D leaves",
        client
            .server()
            .map_or_else(|| g.server.clone(), |h| h.to_string()),
        client.session_id()
    );
    let commands: Vec<String> = Cli::command()
        .get_subcommands()
        .map(|c| c.get_name().to_string())
        .chain(["exit".to_string(), "quit".to_string(), "help".to_string()])
        .collect();
    let mut editor: Editor<Completion<'_>, FileHistory> = Editor::new()?;
    editor.set_helper(Some(Completion {
        runtime,
        client: client.clone(),
        commands,
    }));
    let history = history_file();
    if let Some(h) = &history {
        let _ = editor.load_history(h);
    }
    loop {
        let line = match editor.readline("zk> ") {
            Ok(line) => line,
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(e.into()),
        };
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let _ = editor.add_history_entry(line);
        if matches!(line, "exit" | "quit") {
            break;
        }
        let Some(words) = shlex::split(line) else {
            eprintln!("zk: unbalanced quotes");
            continue;
        };
        let parsed = Cli::try_parse_from(std::iter::once("zk".to_string()).chain(words));
        let cli = match parsed {
            Ok(cli) => cli,
            Err(e) => {
                let _ = e.print();
                continue;
            }
        };
        let Some(command) = cli.command else {
            continue;
        };
        // The session is the shell's; of a line's options only the output format counts.
        let line_global = Global {
            json: cli.global.json,
            ..g.clone()
        };
        let outcome = match command {
            crate::Command::Completions { shell } => {
                clap_complete::generate(shell, &mut Cli::command(), "zk", &mut std::io::stdout());
                Ok(Outcome::Ok)
            }
            command => runtime.block_on(commands::run(&client, &line_global, command)),
        };
        match outcome {
            Ok(Outcome::Ok) => {}
            Ok(Outcome::Code(code)) => eprintln!("(exit code {code})"),
            Err(e) => eprintln!("zk: {} (exit code {})", describe_error(&e), exit_code(&e)),
        }
    }
    if let Some(h) = &history {
        let _ = editor.save_history(h);
    }
    runtime.block_on(client.close());
    Ok(Outcome::Ok)
}
