//! The build's output, in Dockerfile order although stages run in parallel: the stage that
//! is first among those not finished streams live; the others buffer until their turn.

use std::sync::Mutex;

/// One message of the build's output stream (the classic builder's JSON messages).
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// Text for the user (`{"stream": …}`).
    Stream(String),
    /// The built image's id (`{"aux": {"ID": …}}`).
    ImageId(String),
    /// A JSON message of the daemon's, sent as it is: a base image's pull progress, which
    /// dockerd's classic builder streams as `docker pull` shows it.
    Progress(serde_json::Value),
}

/// Where messages go; returns false once nobody listens any more.
pub type Sink<'a> = &'a (dyn Fn(Message) -> bool + Send + Sync);

struct State {
    current: usize,
    buffers: Vec<Vec<Message>>,
    done: Vec<bool>,
    gone: bool,
}

/// Orders the messages of `n` stages.
pub(crate) struct Ordered<'a> {
    sink: Sink<'a>,
    state: Mutex<State>,
}

impl<'a> Ordered<'a> {
    pub fn new(sink: Sink<'a>, n: usize) -> Ordered<'a> {
        Ordered {
            sink,
            state: Mutex::new(State {
                current: 0,
                buffers: vec![Vec::new(); n],
                done: vec![false; n],
                gone: false,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sends (or keeps for later) a message of stage `pos`; false when the client is gone.
    pub fn emit(&self, pos: usize, m: Message) -> bool {
        let mut st = self.lock();
        if st.gone {
            return false;
        }
        if pos == st.current || pos >= st.buffers.len() {
            if !(self.sink)(m) {
                st.gone = true;
                return false;
            }
        } else {
            st.buffers[pos].push(m);
        }
        true
    }

    /// Stage `pos` is finished: the next ones' buffered output follows.
    pub fn finish(&self, pos: usize) {
        let mut st = self.lock();
        if let Some(d) = st.done.get_mut(pos) {
            *d = true;
        }
        while st.current < st.done.len() && st.done[st.current] {
            st.current += 1;
            if st.current < st.buffers.len() {
                let cur = st.current;
                let msgs = std::mem::take(&mut st.buffers[cur]);
                for m in msgs {
                    if !st.gone && !(self.sink)(m) {
                        st.gone = true;
                    }
                }
            }
        }
    }

    /// Sends a message after all stages (the build's summary).
    pub fn emit_final(&self, m: Message) -> bool {
        let n = self.lock().buffers.len();
        self.emit(n, m)
    }
}

/// One stage's handle on the ordered output.
#[derive(Clone, Copy)]
pub(crate) struct StageOut<'o, 'a> {
    pub ordered: &'o Ordered<'a>,
    pub pos: usize,
}

impl StageOut<'_, '_> {
    pub fn say(&self, text: impl Into<String>) -> bool {
        self.ordered.emit(self.pos, Message::Stream(text.into()))
    }

    pub fn progress(&self, m: serde_json::Value) -> bool {
        self.ordered.emit(self.pos, Message::Progress(m))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn later_stages_wait_their_turn() {
        let seen = Mutex::new(Vec::new());
        let sink = |m: Message| {
            if let Message::Stream(s) = m {
                seen.lock().unwrap().push(s);
            }
            true
        };
        let o = Ordered::new(&sink, 2);
        o.emit(1, Message::Stream("b1".into()));
        o.emit(0, Message::Stream("a1".into()));
        o.finish(1);
        o.emit(0, Message::Stream("a2".into()));
        o.finish(0);
        o.emit_final(Message::Stream("end".into()));
        assert_eq!(*seen.lock().unwrap(), ["a1", "a2", "b1", "end"]);
    }
}
