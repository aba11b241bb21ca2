# Generates llm/tokenizer/testdata/unigram_t5like.tokenizer.json: a T5-shaped Unigram vocabulary
# whose scores are log relative frequencies of word-internal substrings in a corpus.
import json, math, re, subprocess, collections, sys
files = subprocess.run(['git','ls-files','*.go','*.md'],capture_output=True,text=True,check=True).stdout.split()
text=[]
for f in sorted(files):
    for line in open(f,encoding='utf-8'):
        s=line.strip()
        if s.startswith('//'): text.append(s[2:])
        elif f.endswith('.md'): text.append(s)
words=collections.Counter()
for line in text:
    for w in line.split():
        words['\u2581'+w]+=1
sub=collections.Counter()
chars=collections.Counter()
for w,c in words.items():
    for ch in w: chars[ch]+=c
    for i in range(len(w)):
        for j in range(i+2,min(len(w),i+10)+1):
            sub[w[i:j]]+=c
# keep substrings seen often, preferring longer ones
cands=[(s,c) for s,c in sub.items() if c>=8]
cands.sort(key=lambda x:(-x[1]*len(x[0])**0.5, x[0]))
keep=dict(cands[:3200])
for ch,c in chars.items():
    keep[ch]=keep.get(ch,0)+c
keep.pop('\u2581',None)
total=sum(keep.values())+words.total()
pieces=[('\u2581', math.log(words.total()/total))]
pieces+=sorted(((s,math.log(c/total)) for s,c in keep.items()), key=lambda x:(-x[1],x[0]))
# float32 scores, as SentencePiece stores them
import struct
f32=lambda x: struct.unpack('f',struct.pack('f',x))[0]
vocab=[['<pad>',0.0],['</s>',0.0],['<unk>',0.0]]+[[p,f32(s)] for p,s in pieces]
n=len(vocab)
vocab+=[[f'<extra_id_{i}>',0.0] for i in range(99,-1,-1)]
added=[{'id':i,'content':c,'single_word':False,'lstrip':False,'rstrip':False,'normalized':False,'special':True} for i,c in enumerate(['<pad>','</s>','<unk>'])]
added+=[{'id':n+99-i,'content':f'<extra_id_{i}>','single_word':False,'lstrip':False,'rstrip':False,'normalized':False,'special':True} for i in range(99,-1,-1)]
doc={'version':'1.0','truncation':None,'padding':None,'added_tokens':added,
 'normalizer':{'type':'Precompiled','precompiled_charsmap':''},
 'pre_tokenizer':{'type':'Sequence','pretokenizers':[{'type':'WhitespaceSplit'},{'type':'Metaspace','replacement':'\u2581','add_prefix_space':True}]},
 'post_processor':{'type':'TemplateProcessing','single':[{'Sequence':{'id':'A','type_id':0}},{'SpecialToken':{'id':'</s>','type_id':0}}],
   'pair':[{'Sequence':{'id':'A','type_id':0}},{'SpecialToken':{'id':'</s>','type_id':0}},{'Sequence':{'id':'B','type_id':0}},{'SpecialToken':{'id':'</s>','type_id':0}}],
   'special_tokens':{'</s>':{'id':'</s>','ids':[1],'tokens':['</s>']}}},
 'decoder':{'type':'Metaspace','replacement':'\u2581','add_prefix_space':True},
 'model':{'type':'Unigram','unk_id':2,'vocab':vocab}}
json.dump(doc,open(sys.argv[1],'w',encoding='utf-8'),ensure_ascii=False,separators=(',',':'))
print(n, len(vocab), file=sys.stderr)
