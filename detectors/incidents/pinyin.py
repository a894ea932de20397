"""Reports written in pinyin, read as Chinese characters for the urgency rules and model.

A resident without a Chinese keyboard at hand (or typing in a hurry on a phone set to Latin
letters) writes "dianti kazhu le, 9 hao lou, limian you ren" or "wo ye ye shuai dao le qi bu
lai". Neither the rules (which look for 卡住, 摔倒, 起不来) nor the character n-gram model can
read that. :func:`read_pinyin` rewrites the pinyin *words it knows* as characters ("电梯卡住了,
9 号楼, 里面有人"), so the same rules and the same negation handling apply ("mei you zhao huo"
becomes "没有着火", which is negated like any other).

What it does, and why it is safe on text that is not pinyin:

- A Latin word counts as pinyin only if it splits entirely into standard Mandarin syllables
  (tone marks "diàn tī" and tone digits "dian4 ti1" are dropped first). "gas", "wifi", "ok",
  "fire" do not; they stay as they are.
- Words are matched against a small dictionary of the words of danger (着火 zhao huo / zhe huo,
  起火, 冒烟, 煤气, 漏水, 电梯, 困, 卡住, 摔倒, 起不来, 叫不醒, 救命…), the people they happen to
  (老人, 爷爷, 孩子…), not being seen or answering (几天没见, 敲门没人应, 电话打不通…) and the
  few function words that carry negation and place (没有, 不, 了, 里面, 有人). The longest match
  wins ("bu dong" is 不动 before "dong" is anything).
- Only runs of pinyin of two syllables or more are read (words separated by spaces, not by
  characters, digits or punctuation): a lone "you" or "he" in an English phrase is left alone.
- Pinyin the dictionary does not know stays in Latin letters; nothing is guessed, so a
  homophone is never turned into the wrong danger. The reading is reported in the explanation.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

# Every standard Mandarin syllable without its tone (ü written v, as on a pinyin keyboard).
_SYLLABLE_LIST = """
    a ai an ang ao ba bai ban bang bao bei ben beng bi bian biao bie bin bing bo bu ca cai can cang cao ce
    cen ceng cha chai chan chang chao che chen cheng chi chong chou chu chua chuai chuan chuang chui chun
    chuo ci cong cou cu cuan cui cun cuo da dai dan dang dao de dei den deng di dia dian diao die ding diu
    dong dou du duan dui dun duo e ei en eng er fa fan fang fei fen feng fo fou fu ga gai gan gang gao ge
    gei gen geng gong gou gu gua guai guan guang gui gun guo ha hai han hang hao he hei hen heng hong hou
    hu hua huai huan huang hui hun huo ji jia jian jiang jiao jie jin jing jiong jiu ju juan jue jun ka kai
    kan kang kao ke kei ken keng kong kou ku kua kuai kuan kuang kui kun kuo la lai lan lang lao le lei
    leng li lia lian liang liao lie lin ling liu lo long lou lu luan lun luo lv lve ma mai man mang mao me
    mei men meng mi mian miao mie min ming miu mo mou mu na nai nan nang nao ne nei nen neng ni nian niang
    niao nie nin ning niu nong nou nu nuan nuo nv nve o ou pa pai pan pang pao pei pen peng pi pian piao
    pie pin ping po pou pu qi qia qian qiang qiao qie qin qing qiong qiu qu quan que qun ran rang rao re
    ren reng ri rong rou ru rua ruan rui run ruo sa sai san sang sao se sen seng sha shai shan shang shao
    she shei shen sheng shi shou shu shua shuai shuan shuang shui shun shuo si song sou su suan sui sun
    suo ta tai tan tang tao te teng ti tian tiao tie ting tong tou tu tuan tui tun tuo wa wai wan wang wei
    wen weng wo wu xi xia xian xiang xiao xie xin xing xiong xiu xu xuan xue xun ya yan yang yao ye yi yin
    ying yo yong you yu yuan yue yun za zai zan zang zao ze zei zen zeng zha zhai zhan zhang zhao zhe zhei
    zhen zheng zhi zhong zhou zhu zhua zhuai zhuan zhuang zhui zhun zhuo zi zong zou zu zuan zui zun zuo
"""
_SYLLABLES = frozenset(_SYLLABLE_LIST.split())
_LONGEST = max(map(len, _SYLLABLES))

# Pinyin words (syllables separated by spaces) and their characters. Where a spelling has more
# than one reading, the one a report about danger means is taken ("zhao huo" 着火, not 找货) and
# the other readings are left out rather than guessed.
_WORDS_SPEC = """
zhao huo:着火 zhe huo:着火 zhao huo le:着火了 qi huo:起火 shi huo:失火 huo zai:火灾 zhao qi lai:着起来
shao qi lai:烧起来 ran qi lai:燃起来 huo miao:火苗 huo guang:火光 ming huo:明火 zi ran:自燃
mao yan:冒烟 nong yan:浓烟 hei yan:黑烟 yan wu:烟雾 you yan:有烟 quan shi yan:全是烟 yan wei:烟味
mei qi:煤气 ran qi:燃气 tian ran qi:天然气 ye hua qi:液化气 mei qi wei:煤气味 ran qi wei:燃气味
lou qi:漏气 xie lou:泄漏 bao zha:爆炸 zha le:炸了 bao jing qi:报警器
chu dian:触电 dai dian:带电 lou dian:漏电 da huo:打火 huo hua:火花 mao huo hua:冒火花 dian xian:电线
cha zuo:插座 dian biao:电表 dian xiang:电箱 duan lu:短路 ma le:麻了
shuai dao:摔倒 shuai dao le:摔倒了 die dao:跌倒 hua dao:滑倒 ban dao:绊倒 shuai le:摔了 dao di:倒地
dao zai di shang:倒在地上 tang zai di shang:躺在地上 qi bu lai:起不来 zhan bu qi lai:站不起来
pa bu qi lai:爬不起来 dong bu liao:动不了 bu neng dong:不能动 yi dong bu dong:一动不动 yun dao:晕倒
hun dao:昏倒 yun guo qu:晕过去 hun mi:昏迷 jiao bu xing:叫不醒 han bu xing:喊不醒 mei fan ying:没反应
bu xing ren shi:不省人事 kun:困 kun zhu:困住 bei kun:被困 kun ren:困人 kun zai:困在 ka zhu:卡住
ka zai:卡在 chu bu lai:出不来 chu bu qu:出不去 guan zai:关在 suo zai:锁在 dian ti:电梯 li mian:里面
li tou:里头 you ren:有人 you ge ren:有个人 ban kong:半空 zhong jian:中间
lou shui:漏水 shui guan:水管 bao guan:爆管 bao le:爆了 yan le:淹了 jin shui:进水 shui man:水漫
jiu ming:救命 kuai lai:快来 kuai lai ren:快来人 jiu hu che:救护车 xiong kou:胸口 xiong men:胸闷
chuan bu shang qi:喘不上气 chuan bu guo qi:喘不过气 xin zang:心脏 liu xue:流血 bu xiang huo le:不想活了
tiao lou:跳楼 bang bang wo:帮帮我 bang mang:帮忙 bao jing:报警
lao ren:老人 lao tai tai:老太太 lao tou:老头 da ye:大爷 da ma:大妈 nai nai:奶奶 ye ye:爷爷
wai po:外婆 wai gong:外公 lao ban:老伴 wo ma:我妈 wo ba:我爸 xiao hai:小孩 hai zi:孩子 lin ju:邻居
du ju:独居 yi ge ren:一个人 yi ge ren zhu:一个人住
ji tian:几天 hao ji tian:好几天 liang tian:两天 san tian:三天 mei jian:没见 mei kan jian:没看见
mei jian guo:没见过 mei chu men:没出门 mei xia lou:没下楼 qiao men:敲门 mei ren ying:没人应
mei ren kai men:没人开门 mei ren jie:没人接 dian hua:电话 da bu tong:打不通 lian xi bu shang:联系不上
shi lian:失联 bu jian le:不见了 zou shi:走失 zou diu:走丢 zhao bu dao:找不到 mei hui lai:没回来
wo:我 ta:他 le:了 you:有 ren:人 hao lou:号楼 dan yuan:单元 lou dao:楼道 lou ti:楼梯 jia:家 wo jia:我家
jia li:家里 wu li:屋里 chu fang:厨房 wei sheng jian:卫生间 kuai:快 qing:请 zai:在 bu:不 mei:没
mei you:没有 hen:很 hao:好 hao duo:好多 jin tian:今天 zuo tian:昨天 xian zai:现在 gang cai:刚才
yi zhi:一直 hai zai:还在 bu dong:不动 mei dong:没动 hao xiang:好像 you dian:有点 wei dao:味道 zhi shi:只是
dian ti li:电梯里 kuai dian:快点 li:里 lou xia:楼下 lou shang:楼上 ge bi:隔壁 dui men:对门 nong:浓
"""


def _entries(spec: str) -> dict[tuple[str, ...], str]:
    """``spec`` lists ``syllables:汉字``, the syllables of a word separated by spaces: every run of
    bare syllables ends in an item ``last:汉字``."""
    words: dict[tuple[str, ...], str] = {}
    pending: list[str] = []
    for item in spec.split():
        if ":" in item:
            last, hanzi = item.split(":", 1)
            words[(*pending, last)] = hanzi
            pending = []
        else:
            pending.append(item)
    if pending:
        raise ValueError(f"pinyin word without characters: {' '.join(pending)}")
    unknown = {s for word in words for s in word} - _SYLLABLES
    if unknown:
        raise ValueError(f"not pinyin syllables: {sorted(unknown)}")
    return words


_WORDS = _entries(_WORDS_SPEC)
_LONGEST_WORD = max(map(len, _WORDS))

# A Latin word, with tone marks or tone digits after its syllables ("diàn tī", "dian4ti1").
_LETTER = "a-zA-ZüÜàáǎāèéěēìíǐīòóǒōùúǔūǖǘǚǜÀÁǍĀÈÉĚĒÌÍǏĪÒÓǑŌÙÚǓŪ"
_LATIN_WORD = re.compile(f"[{_LETTER}]+(?:[1-5](?![0-9])[{_LETTER}]*)*")
_TONE_DIGITS = re.compile(r"[1-5]")
_SPACES = re.compile(r"[ \t]*")


def _plain(word: str) -> str:
    """Lower case, without tone marks or tone digits, ü as v."""
    word = unicodedata.normalize("NFKD", word.lower())
    word = "".join(ch for ch in word if not unicodedata.combining(ch))  # ü is u + a combining diaeresis
    return _TONE_DIGITS.sub("", word)


@lru_cache(maxsize=4096)
def syllables(word: str) -> tuple[str, ...] | None:
    """``word`` (plain: lower case, no tones) split into the fewest pinyin syllables, or ``None`` if it
    is not pinyin ("dianti" → ("dian", "ti"); "xian" is one syllable, not "xi an"; "gas" is None)."""
    best: list[tuple[str, ...] | None] = [()] + [None] * len(word)
    for end in range(1, len(word) + 1):
        for start in range(max(0, end - _LONGEST), end):
            before = best[start]
            if before is not None and word[start:end] in _SYLLABLES:
                candidate = (*before, word[start:end])
                if best[end] is None or len(candidate) < len(best[end] or ()):
                    best[end] = candidate
    return best[len(word)]


def _read_run(run: list[tuple[str, ...]]) -> str | None:
    """The characters for a run of pinyin words (each given as its syllables), the words the
    dictionary does not know left in Latin letters; ``None`` if nothing was read."""
    flat = [(s, i) for i, word in enumerate(run) for s in word]
    pieces: list[tuple[bool, str]] = []  # (is characters, text)
    read_any = False
    at = 0
    while at < len(flat):
        for width in range(min(_LONGEST_WORD, len(flat) - at), 0, -1):
            hanzi = _WORDS.get(tuple(s for s, _ in flat[at : at + width]))
            if hanzi is not None:
                pieces.append((True, hanzi))
                read_any = True
                at += width
                break
        else:
            syllable, word = flat[at]
            # An unknown syllable keeps its word together: "xyz shuai dao" → "xyz 摔倒".
            if pieces and not pieces[-1][0] and flat[at - 1][1] == word:
                pieces[-1] = (False, pieces[-1][1] + syllable)
            else:
                pieces.append((False, syllable))
            at += 1
    if not read_any:
        return None
    out = ""
    for i, (is_hanzi, text) in enumerate(pieces):
        if i and not (is_hanzi and pieces[i - 1][0]):
            out += " "
        out += text
    return out


def _pinyin_runs(text: str) -> list[tuple[int, int, list[tuple[str, ...]]]]:
    """(start, end, the words' syllables) of every run of pinyin words separated only by spaces."""
    runs: list[tuple[int, int, list[tuple[str, ...]]]] = []
    current: tuple[int, int, list[tuple[str, ...]]] | None = None
    for found in _LATIN_WORD.finditer(text):
        split = syllables(_plain(found.group()))
        joined = current is not None and _SPACES.fullmatch(text, current[1], found.start()) is not None
        if split is None:
            current = None
        elif current is not None and joined:
            current[2].append(split)
            current = (current[0], found.end(), current[2])
            runs[-1] = current
        else:
            current = (found.start(), found.end(), [split])
            runs.append(current)
    return runs


def read_pinyin(text: str) -> str:
    """``text`` with its runs of pinyin of two syllables or more read as characters where the
    dictionary knows the words; anything else unchanged (idempotent)."""
    if not _LATIN_WORD.search(text):
        return text
    out: list[str] = []
    done = 0
    for start, end, run in _pinyin_runs(text):
        if sum(map(len, run)) < 2:
            continue
        read = _read_run(run)
        if read is not None:
            out += [text[done:start], read]
            done = end
    out.append(text[done:])
    return "".join(out)


__all__ = ["read_pinyin", "syllables"]
