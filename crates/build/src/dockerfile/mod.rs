//! The Dockerfile: parser directives, instructions and stages, as the Dockerfile reference
//! describes them. [`parse`] turns the text into a [`Dockerfile`] or a [`ParseError`] that
//! names the line and column; words keep their raw form (quotes and `$VAR`s) until the build
//! expands them with the variables in scope at that step.

mod lexer;
mod parser;
pub mod words;

pub use parser::{parse, parse_instruction};

/// A parsed Dockerfile.
#[derive(Debug, Clone, PartialEq)]
pub struct Dockerfile {
    /// The escape character (`\` or `` ` ``, from the `escape` directive).
    pub escape: char,
    /// The `syntax` directive, if any (recorded, not acted on: berth has one frontend).
    pub syntax: Option<String>,
    /// `ARG`s before the first `FROM`: usable in `FROM` lines, and in a stage that declares
    /// them again.
    pub global_args: Vec<Instruction>,
    pub stages: Vec<Stage>,
}

/// One `FROM` and the instructions up to the next.
#[derive(Debug, Clone, PartialEq)]
pub struct Stage {
    /// Position in the Dockerfile, from 0.
    pub index: usize,
    /// The `AS` name, lowercased (stage names are case-insensitive).
    pub name: Option<String>,
    /// The `FROM` instruction itself.
    pub from: Instruction,
    pub instructions: Vec<Instruction>,
}

/// One instruction, with where it is.
#[derive(Debug, Clone, PartialEq)]
pub struct Instruction {
    /// First line (1-based).
    pub line: usize,
    /// Last line, heredoc bodies included.
    pub end_line: usize,
    /// Column of the keyword (1-based).
    pub column: usize,
    /// The instruction as one line (continuations joined, heredoc bodies left out): what
    /// `Step N/M :` shows and the image history records.
    pub text: String,
    pub command: Command,
}

/// The instructions of the Dockerfile reference. Words are raw: expanded when the step runs.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    From(From),
    Run(Run),
    Cmd(CmdLine),
    Entrypoint(CmdLine),
    Label(Vec<KeyValue>),
    Expose(Vec<String>),
    Env(Vec<KeyValue>),
    Copy(Copy),
    Add(Copy),
    Volume(Vec<String>),
    User(String),
    Workdir(String),
    Arg(Vec<ArgDecl>),
    /// The trigger, as it will be stored in the image (`ONBUILD` removed).
    Onbuild(String),
    Stopsignal(String),
    Healthcheck(Health),
    Shell(Vec<String>),
    Maintainer(String),
}

impl Command {
    /// The instruction's keyword, as written in Dockerfiles.
    pub fn keyword(&self) -> &'static str {
        match self {
            Command::From(_) => "FROM",
            Command::Run(_) => "RUN",
            Command::Cmd(_) => "CMD",
            Command::Entrypoint(_) => "ENTRYPOINT",
            Command::Label(_) => "LABEL",
            Command::Expose(_) => "EXPOSE",
            Command::Env(_) => "ENV",
            Command::Copy(_) => "COPY",
            Command::Add(_) => "ADD",
            Command::Volume(_) => "VOLUME",
            Command::User(_) => "USER",
            Command::Workdir(_) => "WORKDIR",
            Command::Arg(_) => "ARG",
            Command::Onbuild(_) => "ONBUILD",
            Command::Stopsignal(_) => "STOPSIGNAL",
            Command::Healthcheck(_) => "HEALTHCHECK",
            Command::Shell(_) => "SHELL",
            Command::Maintainer(_) => "MAINTAINER",
        }
    }
}

/// `FROM [--platform=P] IMAGE [AS NAME]`.
#[derive(Debug, Clone, PartialEq)]
pub struct From {
    pub image: String,
    pub platform: Option<String>,
    pub alias: Option<String>,
}

/// `RUN [--network=MODE] COMMAND`.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    pub cmd: CmdLine,
    /// Heredocs of the command line, in order.
    pub heredocs: Vec<Heredoc>,
    /// `--network`: `default`, `none` or `host`.
    pub network: Option<String>,
}

/// Shell form (run by the stage's `SHELL`) or exec form (a JSON array).
#[derive(Debug, Clone, PartialEq)]
pub enum CmdLine {
    Shell(String),
    Exec(Vec<String>),
}

/// `<<EOF` … `EOF`.
#[derive(Debug, Clone, PartialEq)]
pub struct Heredoc {
    pub name: String,
    /// The lines between the marker and the terminator, each ending in a newline (leading
    /// tabs already removed for `<<-`).
    pub body: String,
    /// False when the name was quoted: the body is taken literally.
    pub expand: bool,
}

/// `KEY=VALUE` of ENV and LABEL, both raw.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyValue {
    pub key: String,
    pub value: String,
}

/// `ARG NAME[=DEFAULT]`, the default raw.
#[derive(Debug, Clone, PartialEq)]
pub struct ArgDecl {
    pub name: String,
    pub default: Option<String>,
}

/// COPY and ADD.
#[derive(Debug, Clone, PartialEq)]
pub struct Copy {
    pub sources: Vec<Source>,
    pub dest: String,
    /// `--from=STAGE|IMAGE` (COPY only).
    pub from: Option<String>,
    pub chown: Option<String>,
    pub chmod: Option<String>,
    /// `--checksum=sha256:…` (ADD of a URL).
    pub checksum: Option<String>,
    /// `--link` is accepted: every berth layer is already independent of the one below.
    pub link: bool,
    /// Whether the sources were given in exec (JSON) form.
    pub json: bool,
}

/// One source of COPY/ADD.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// A path or pattern in the context (or the `--from` stage), or a URL for ADD; raw.
    Path(String),
    /// A file made of a heredoc.
    Heredoc(Heredoc),
}

/// HEALTHCHECK.
#[derive(Debug, Clone, PartialEq)]
pub enum Health {
    /// `HEALTHCHECK NONE`: disable the base image's check.
    None,
    Check {
        test: CmdLine,
        interval: Option<u64>,
        timeout: Option<u64>,
        start_period: Option<u64>,
        start_interval: Option<u64>,
        retries: Option<u64>,
    },
}

/// A Dockerfile that cannot be parsed: where, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // dockerd's words ("Dockerfile parse error line N:"), with the column added.
        write!(
            f,
            "Dockerfile parse error line {}, column {}: {}",
            self.line, self.column, self.message
        )
    }
}

impl std::error::Error for ParseError {}
